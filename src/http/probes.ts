/**
 * The routes every role serves: /health (the role, and this process's executor when it has
 * one) and /metrics (any API token). A worker serves nothing else and says where to go.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Role } from '../config.ts';
import type { Db } from '../db.ts';
import { tokenHint } from '../errors.ts';
import type { Executor } from '../executor/executor.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import type { Identify } from './identify.ts';

export interface ProbeDeps {
  role: Role;
  db: Db;
  executor: Executor | undefined;
  workers: number;
  metrics: Metrics;
  identify: Identify;
  logger: Logger;
}

/** Returns a handler that answers /health and /metrics and returns false for anything else. */
export function createProbes(deps: ProbeDeps): (req: IncomingMessage, res: ServerResponse) => boolean {
  const { db, executor, logger } = deps;
  const requestLog = logger.child({ component: 'request' });
  return (req, res) => {
    if (req.url === '/health' && (req.method === 'GET' || req.method === 'HEAD')) {
      db.$queryRawUnsafe('SELECT 1')
        .then(() => {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(
            JSON.stringify({
              status: 'ok',
              role: deps.role,
              ...(executor && { executor: { id: executor.id, running: executor.runningCount, workers: deps.workers } }),
            }),
          );
        })
        .catch((error: unknown) => {
          logger.error({ err: error }, 'health check failed');
          res.writeHead(503, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ status: 'unavailable', role: deps.role, reason: 'the database does not answer' }));
        });
      return true;
    }
    if (req.url === '/metrics' && req.method === 'GET') {
      deps
        .identify(req.headers.authorization)
        .then(async ({ identity, authProblem }) => {
          if (identity === null) {
            const problem = `${authProblem ?? 'Metrics need an API token: send "Authorization: Bearer <token>".'} Any role will do: ${tokenHint('viewer')}`;
            requestLog.info({ code: 'UNAUTHENTICATED', path: '/metrics' }, `request refused: ${problem}`);
            res.writeHead(401, { 'content-type': 'text/plain', 'www-authenticate': 'Bearer' });
            res.end(`${problem}\n`);
            return;
          }
          const { body, contentType } = await deps.metrics.render();
          res.writeHead(200, { 'content-type': contentType });
          res.end(body);
        })
        .catch((error: unknown) => {
          logger.error({ err: error }, 'metrics collection failed');
          res.writeHead(503, { 'content-type': 'text/plain' });
          res.end('metrics are unavailable: the database does not answer\n');
        });
      return true;
    }
    return false;
  };
}

/** What a worker answers to anything but its probes. */
export function notOnWorker(req: IncomingMessage, res: ServerResponse): void {
  // A request body is not read: say so on a fresh connection rather than leave it unread.
  res.writeHead(404, { 'content-type': 'text/plain', ...(req.method !== 'GET' && req.method !== 'HEAD' && { connection: 'close' }) });
  res.end(
    'This is a dagpipe worker (ROLE=worker): it runs scripts and serves only /health and /metrics. ' +
      'GraphQL, GraphiQL and the dashboard are served by the API processes (ROLE=api, port 4000 by default).\n',
  );
}
