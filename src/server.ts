/** main(): configuration -> app (by ROLE) -> listen; SIGINT/SIGTERM stop it cleanly. */
import { ConfigError, loadConfig } from './config.ts';
import { buildApp } from './app.ts';
import { createLogger } from './logger.ts';
import { ScriptUserError } from './executor/script-user.ts';
import { DatabaseInUseError } from './executor/executor.ts';
import { applyMigrations, MigrationError } from './migrations.ts';
import { redactedUrl } from './database-url.ts';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      process.exit(2);
    }
    throw error;
  }
  const logger = createLogger(config.logLevel);
  try {
    const applied = await applyMigrations(config.databaseUrl);
    if (applied.length > 0) logger.info({ migrations: applied }, 'database migrations applied');
  } catch (error) {
    if (error instanceof MigrationError) {
      console.error(error.message);
      process.exit(1);
    }
    throw error;
  }
  let app;
  try {
    app = await buildApp({ config, logger, env: process.env });
  } catch (error) {
    if (error instanceof ScriptUserError) {
      console.error(error.message);
      process.exit(2);
    }
    throw error;
  }
  let url: string;
  try {
    url = await app.start();
  } catch (error) {
    await app.stop().catch(() => undefined);
    if (error instanceof DatabaseInUseError) {
      console.error(error.message);
      process.exit(2);
    }
    logger.error({ err: error }, `could not start on ${config.host}:${config.port}`);
    const inUse = (error as NodeJS.ErrnoException).code === 'EADDRINUSE';
    console.error(
      inUse
        ? `Port ${config.port} on ${config.host} is already in use (is dagpipe already running?). Stop the other process or set PORT.`
        : `Could not start: ${(error as Error).message}`,
    );
    process.exit(1);
  }
  logger.info(
    { url, role: config.role, ...(app.executor && { workers: config.workers, executorId: app.executor.id }), database: redactedUrl(config.databaseUrl) },
    'dagpipe is listening',
  );
  if (config.role === 'worker') console.log(`Worker: ${url} (ROLE=worker serves /health and /metrics; GraphQL is served by ROLE=api processes)`);
  else {
    console.log(`GraphiQL: ${url}`);
    console.log(`Dashboard: ${new URL('/', url).href}`);
  }
  if (!config.auth) {
    console.log('Authentication is off (AUTH=off): anyone who can reach this address can run scripts as this user.');
  } else if ((await app.store.db.apiToken.count({ where: { revokedAt: null } })) === 0) {
    console.log(
      'Authentication is on and there is no API token yet. Create one, then send it as "Authorization: Bearer <token>"\n' +
        '(in GraphiQL: the Headers tab, {"Authorization": "Bearer <token>"}):\n' +
        '  npm run token -- create --role admin --name <you>',
    );
  }

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    app.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'failed to stop cleanly');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
