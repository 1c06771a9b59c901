import path from 'node:path';
import { defineConfig } from 'prisma/config';
import { loadConfig } from './src/config.ts';
import { createAdapter } from './src/db-adapter.ts';

// Migrations use the same DATABASE_URL (and default) as the service.
const { databaseUrl } = loadConfig(process.env);
process.env.DATABASE_URL = databaseUrl;

export default defineConfig({
  experimental: { adapter: true },
  engine: 'js',
  schema: path.join('prisma', 'sqlite', 'schema.prisma'),
  migrations: { path: path.join('prisma', 'sqlite', 'migrations') },
  adapter: async () => createAdapter(databaseUrl),
});
