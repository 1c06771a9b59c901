/**
 * Token management from a shell, straight on the database (it works before any token
 * exists, so it is how the first admin token is made):
 *
 *   npm run token -- create --role admin --name alice
 *   npm run token -- list
 *   npm run token -- revoke <id>
 */
import { parseArgs } from 'node:util';
import { createToken, revokeToken } from './auth/tokens.ts';
import { ConfigError, loadConfig } from './config.ts';
import { connectDb } from './db.ts';
import { DomainError } from './errors.ts';

const USAGE = `Usage:
  npm run token -- create --role viewer|operator|admin --name <who>
  npm run token -- list
  npm run token -- revoke <id>
Uses DATABASE_URL like the service (default ./data/dagpipe.db).`;

async function main(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { role: { type: 'string' }, name: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  const [command, id] = positionals;
  if (values.help || !command || !['create', 'list', 'revoke'].includes(command)) {
    console.error(USAGE);
    return values.help ? 0 : 64;
  }
  const config = loadConfig(process.env);
  const { prisma: db } = await connectDb(config.databaseUrl);
  try {
    if (command === 'create') {
      if (!values.role || !values.name) {
        console.error(`create needs --role and --name.\n${USAGE}`);
        return 64;
      }
      const token = await createToken(db, { name: values.name, role: values.role });
      console.log(`Created token ${token.id} "${token.name}" with role ${token.role}. Its secret, shown only now:\n\n  ${token.secret}\n`);
      console.log('Send it as "Authorization: Bearer <secret>" (graphql-ws: connectionParams {"authorization": "Bearer <secret>"}).');
      return 0;
    }
    if (command === 'list') {
      const tokens = await db.apiToken.findMany({ orderBy: { id: 'asc' } });
      if (tokens.length === 0) console.log('No tokens yet. Create one with: npm run token -- create --role admin --name <you>');
      for (const t of tokens) {
        const state = t.revokedAt ? `revoked ${t.revokedAt.toISOString()}` : `last used ${t.lastUsedAt?.toISOString() ?? 'never'}`;
        console.log(`${t.id}\t${t.role}\t${t.name}\t${t.prefix}…\tcreated ${t.createdAt.toISOString()}\t${state}`);
      }
      return 0;
    }
    const tokenId = Number(id);
    if (!Number.isSafeInteger(tokenId)) {
      console.error(`revoke needs a token id (see npm run token -- list), got "${id ?? ''}".`);
      return 64;
    }
    const revoked = await revokeToken(db, tokenId);
    console.log(`Token ${revoked.id} "${revoked.name}" is revoked; requests with it are refused from now on.`);
    return 0;
  } finally {
    await db.$disconnect();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof ConfigError || error instanceof DomainError) console.error(error.message);
    else if (/does not exist|no such table/i.test(String((error as Error).message))) {
      // It works on the service's database, which npm start migrates; it never migrates
      // itself, since a running service holds that database.
      console.error('The database has no token table yet: start the service once (npm start applies the migrations), or run npm run migrate.');
    } else console.error(error);
    process.exit(error instanceof DomainError ? 3 : 1);
  },
);
