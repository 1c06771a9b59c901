/**
 * Expected errors: thrown by the engine and the store, returned to GraphQL clients as
 * typed results (see src/schema/errors.ts). Each names the input field at fault, in the
 * user's terms, so a UI can put the message next to the right box.
 */
export abstract class DomainError extends Error {
  /** The argument path at fault, e.g. "name" or "inputs.ip". */
  abstract readonly field: string;
}

/** The value of a field is not acceptable. */
export class ValidationError extends DomainError {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
    this.name = 'ValidationError';
  }
}

/** An id in the input does not name an existing object. */
export class NotFoundError extends DomainError {
  constructor(
    readonly field: string,
    readonly entity: string,
    readonly id: number,
  ) {
    super(`No ${entity} with id ${id} exists. Check the id, for example with the ${entity}s query.`);
    this.name = 'NotFoundError';
  }
}

/** The request is valid but conflicts with the current state (sealed graph, duplicate name...). */
export class ConflictError extends DomainError {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
    this.name = 'ConflictError';
  }
}

/** The graph has a cycle; `path` lists the vertex names around it, first repeated last. */
export class CycleError extends DomainError {
  readonly field = 'edges';
  constructor(readonly path: string[]) {
    super(`The graph has a cycle: ${path.join(' -> ')}. Remove one of these edges.`);
    this.name = 'CycleError';
  }
}

/** No valid token came with the request while authentication is on. */
export class UnauthenticatedError extends DomainError {
  readonly field = 'authorization';
  constructor(
    /** The least role a token needs for what was asked. */
    readonly requiredRole: string,
    message: string,
  ) {
    super(message);
    this.name = 'UnauthenticatedError';
  }
}

/** " or higher" after a role that has a higher one. */
export function orHigher(role: string): string {
  return role === 'admin' ? '' : ' or higher';
}

/** How to get a token of `role`, for messages that refuse a request for want of one. */
export function tokenHint(role: string): string {
  return `an admin creates one with: npm run token -- create --role ${role} --name <who>`;
}

/** The token is valid but its role may not do this. */
export class ForbiddenError extends DomainError {
  readonly field = 'authorization';
  constructor(
    readonly role: string,
    readonly requiredRole: string,
    what: string,
  ) {
    super(`${what} needs the ${requiredRole} role${orHigher(requiredRole)}; this token's role is ${role}. Ask an admin for a token with that role.`);
    this.name = 'ForbiddenError';
  }
}

/** Re-raises a validation error of a nested input with its full path, e.g. "vertices.2.script". */
export function withinField<T>(prefix: string, work: () => T): T {
  const prefixed = (error: unknown): never => {
    if (error instanceof ValidationError) throw new ValidationError(`${prefix}.${error.field}`, error.message);
    throw error;
  };
  try {
    const result = work();
    return (result instanceof Promise ? result.catch(prefixed) : result) as T;
  } catch (error) {
    return prefixed(error);
  }
}
