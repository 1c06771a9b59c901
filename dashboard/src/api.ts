/**
 * The dashboard's only way to the service: the public GraphQL API at /graphql, with the
 * token of this browser session (sessionStorage: it ends with the tab, and no other site
 * can read it). Documents are typed by codegen (dashboard/src/generated).
 */
import type { TypedDocumentString } from './generated/graphql';

const TOKEN_KEY = 'dagpipe.token';

export const session = {
  token: (): string | null => sessionStorage.getItem(TOKEN_KEY),
  signIn: (token: string) => sessionStorage.setItem(TOKEN_KEY, token.trim()),
  signOut: () => sessionStorage.removeItem(TOKEN_KEY),
};

/** A request the service refused, in its own words (UNAUTHENTICATED: the token is not valid). */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
  }
}

export async function request<Result, Variables>(document: TypedDocumentString<Result, Variables>, variables?: Variables): Promise<Result> {
  const token = session.token();
  const response = await fetch('/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json', ...(token && { authorization: `Bearer ${token}` }) },
    body: JSON.stringify({ query: document.toString(), variables }),
  });
  const body = (await response.json().catch(() => null)) as { data?: Result; errors?: { message: string; extensions?: { code?: string } }[] } | null;
  const error = body?.errors?.[0];
  if (error) throw new ApiError(error.message, error.extensions?.code);
  if (!body?.data) throw new ApiError(`The service answered ${response.status} without data.`, undefined);
  return body.data;
}
