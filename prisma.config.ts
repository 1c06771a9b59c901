import path from 'node:path';
import { defineConfig } from 'prisma/config';
import { loadConfig } from './src/config.ts';
import { migrationAdapter } from './src/db-adapter.ts';

// Migrations use the same DATABASE_URL (and default) as the service; its scheme picks the
// schema and migrations folder (prisma/sqlite or prisma/postgresql).
const { databaseUrl, databaseProvider } = loadConfig({ DATABASE_URL: process.env.DATABASE_URL });
process.env.DATABASE_URL = databaseUrl;

export default defineConfig({
  experimental: { adapter: true },
  engine: 'js',
  schema: path.join('prisma', databaseProvider, 'schema.prisma'),
  migrations: { path: path.join('prisma', databaseProvider, 'migrations') },
  adapter: async () => migrationAdapter(databaseUrl),
});
