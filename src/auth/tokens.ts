/**
 * API tokens: random secrets, stored as SHA-256 hashes (a token is 256 random bits, so a
 * fast hash is enough; no password-style stretching is needed), shown once at creation,
 * listed without their secret, and revoked rather than deleted so the audit trail keeps
 * its names.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Db } from '../db.ts';
import { isRole, type Identity, type Role } from '../engine/roles.ts';
import { requireName } from '../engine/fields.ts';
import { NotFoundError, ValidationError } from '../errors.ts';

/** Secrets look like "dp_" + 43 base64url characters (32 random bytes). */
const TOKEN_PREFIX = 'dp_';
const TOKEN_BODY_LENGTH = 43;
const TOKEN_PATTERN = /^dp_[A-Za-z0-9_-]{43}$/;
const TOKEN_CHARACTER = /[A-Za-z0-9_-]/;
const MAX_NAME_LENGTH = 100;
/** lastUsedAt is written at most this often per token, not on every request. */
const TOUCH_INTERVAL_MS = 60_000;

export function hashToken(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

export interface CreatedToken {
  id: number;
  name: string;
  role: Role;
  /** The secret: shown this once, never stored. */
  secret: string;
}

export async function createToken(db: Db, input: { name: string; role: string }): Promise<CreatedToken> {
  // Who or what uses it, e.g. "alice" or "ci-nightly": a name like any other (one line, Unicode).
  const name = requireName('name', input.name, MAX_NAME_LENGTH);
  if (!isRole(input.role)) throw new ValidationError('role', `The role must be viewer, operator or admin, got "${input.role}".`);
  const secret = `dp_${randomBytes(32).toString('base64url')}`;
  const row = await db.apiToken.create({ data: { name, role: input.role, hash: hashToken(secret), prefix: secret.slice(0, 8) } });
  return { id: row.id, name: row.name, role: input.role, secret };
}

export async function revokeToken(db: Db, id: number): Promise<{ id: number; name: string; role: string; revokedAt: Date }> {
  const token = await db.apiToken.findUnique({ where: { id } });
  if (!token) throw new NotFoundError('id', 'token', id);
  if (token.revokedAt) return { ...token, revokedAt: token.revokedAt };
  return db.apiToken.update({ where: { id }, data: { revokedAt: new Date() } }) as Promise<{ id: number; name: string; role: string; revokedAt: Date }>;
}

/**
 * What is wrong with a string that is not shaped like a token: its start, its length or a
 * character, so that a token cut short or pasted with a stray character is recognised as
 * such. Never repeats the token itself.
 */
export function malformedToken(secret: string): string {
  const shape = `dagpipe tokens are "${TOKEN_PREFIX}" plus ${TOKEN_BODY_LENGTH} letters, digits, "-" or "_" (${TOKEN_PREFIX.length + TOKEN_BODY_LENGTH} characters in all)`;
  if (!secret.startsWith(TOKEN_PREFIX)) return `That is not a dagpipe token: ${shape}.`;
  const length = [...secret].length;
  if (length !== TOKEN_PREFIX.length + TOKEN_BODY_LENGTH) {
    return `This token is ${length} characters long; ${shape}. Check that it was copied whole.`;
  }
  const body = [...secret.slice(TOKEN_PREFIX.length)];
  const at = body.findIndex((c) => !TOKEN_CHARACTER.test(c));
  const bad = body[at]!;
  const shown = /^[\x21-\x7e]$/.test(bad) ? `"${bad}"` : `U+${bad.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
  return `This token has ${shown} at character ${TOKEN_PREFIX.length + at + 1}; ${shape}. Check that it was copied exactly.`;
}

export type TokenCheck = { identity: Identity } | { problem: string };

/** Resolves an Authorization header value to who is calling, or says what is wrong with it. */
export class TokenVerifier {
  private readonly touched = new Map<number, number>();

  constructor(private readonly db: Db) {}

  async check(authorization: string | undefined | null): Promise<TokenCheck | null> {
    if (!authorization) return null;
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (!match) return { problem: 'The Authorization header must be "Bearer <token>".' };
    const secret = match[1]!;
    if (!TOKEN_PATTERN.test(secret)) return { problem: malformedToken(secret) };
    const token = await this.db.apiToken.findUnique({ where: { hash: hashToken(secret) } });
    if (!token) return { problem: 'This token is not known. Check that it was copied whole, or create a new one.' };
    if (token.revokedAt) return { problem: `This token ("${token.name}") was revoked on ${token.revokedAt.toISOString()}. Ask an admin for a new one.` };
    if (!isRole(token.role)) return { problem: `This token has an unknown role "${token.role}".` };
    this.touch(token.id);
    return { identity: { name: token.name, role: token.role, tokenId: token.id } };
  }

  private touch(id: number): void {
    const now = Date.now();
    if ((this.touched.get(id) ?? 0) > now - TOUCH_INTERVAL_MS) return;
    this.touched.set(id, now);
    void this.db.apiToken.update({ where: { id }, data: { lastUsedAt: new Date(now) } }).catch(() => undefined);
  }
}
