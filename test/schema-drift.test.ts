/**
 * One Prisma schema serves one provider, so SQLite and PostgreSQL each have theirs
 * (prisma/sqlite, prisma/postgresql). The code uses one client type for both: their models
 * must stay identical, and each must have its migrations.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { migrationsIn } from '../src/migrations.ts';

/** The model blocks (with their doc comments), without generators and datasource. */
function models(file: string): string {
  const text = readFileSync(file, 'utf8');
  const start = text.indexOf('/// A workflow definition');
  expect(start, `${file} has the Graph model's doc comment, where the models begin`).toBeGreaterThan(0);
  return text.slice(start).trim();
}

describe('the two Prisma schemas', () => {
  it('have the same models, field for field', () => {
    const sqlite = models('prisma/sqlite/schema.prisma');
    const postgres = models('prisma/postgresql/schema.prisma');
    expect(postgres.split('\n')).toEqual(sqlite.split('\n'));
    expect(sqlite).toMatch(/model Event \{[^}]*\bseq\b/);
  });

  it('each names its own provider and client, and only SQLite generates the Pothos types', () => {
    const sqlite = readFileSync('prisma/sqlite/schema.prisma', 'utf8');
    const postgres = readFileSync('prisma/postgresql/schema.prisma', 'utf8');
    expect(sqlite).toContain('provider = "sqlite"');
    expect(postgres).toContain('provider = "postgresql"');
    expect(postgres).toContain('output       = "../../src/generated/prisma-postgresql"');
    expect(sqlite).toContain('prisma-pothos-types');
    expect(postgres).not.toContain('prisma-pothos-types');
  });

  it('each has migrations, locked to its provider', () => {
    for (const provider of ['sqlite', 'postgresql']) {
      expect(migrationsIn(`prisma/${provider}/migrations`).length).toBeGreaterThan(0);
      expect(readFileSync(`prisma/${provider}/migrations/migration_lock.toml`, 'utf8')).toContain(`provider = "${provider}"`);
    }
  });
});
