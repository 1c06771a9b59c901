/**
 * Roles (pure). Each role can do everything the one before it can:
 *
 *   viewer    queries and subscriptions
 *   operator  + startPipeline, finishInput, cancelPipeline, retryPipeline
 *   admin     + define and change graphs and scripts, delete pipelines, manage tokens, read the audit trail
 */
export const ROLES = ['viewer', 'operator', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export function isRole(value: string): value is Role {
  return (ROLES as readonly string[]).includes(value);
}

/** Whether `role` may do what `needed` may. */
export function allows(role: Role, needed: Role): boolean {
  return ROLES.indexOf(role) >= ROLES.indexOf(needed);
}

/** Who is calling: a token's owner, or everyone when authentication is off. */
export interface Identity {
  /** The token's name; "anonymous" when authentication is off. */
  name: string;
  role: Role;
  /** Null when authentication is off. */
  tokenId: number | null;
}
