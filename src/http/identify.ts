/** Who is calling, from an Authorization value: the one rule every route and transport uses. */
import { TokenVerifier, type TokenCheck } from '../auth/tokens.ts';
import type { Db } from '../db.ts';
import type { Identity } from '../engine/roles.ts';

export interface CallerCheck {
  identity: Identity | null;
  /** Why a token that came with the request was not accepted. */
  authProblem?: string;
}

export type Identify = (authorization: string | null | undefined) => Promise<CallerCheck>;

/** Everyone is admin with authentication off (AUTH=off, loopback only). */
export function createIdentify(auth: boolean, db: Db): Identify {
  const verifier = new TokenVerifier(db);
  return async (authorization) => {
    if (!auth) return { identity: { name: 'anonymous', role: 'admin', tokenId: null } };
    const check: TokenCheck | null = await verifier.check(authorization);
    if (check === null) return { identity: null };
    return 'identity' in check ? { identity: check.identity } : { identity: null, authProblem: check.problem };
  };
}
