/**
 * SPEC rule 11 with real processes: what each ROLE serves, a second process refused on
 * SQLite, and wake-ups across processes on PostgreSQL (LISTEN/NOTIFY): a pipeline started
 * on an API process starts on a worker process at once, not at the worker's next poll,
 * also after the listening connection was cut; a cancel on the API kills the script on
 * the worker at once.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createToken } from '../../src/auth/tokens.ts';
import { connectDb } from '../../src/db.ts';
import { LISTENER_APPLICATION_NAME } from '../../src/store/work-listener.ts';
import { freshSqliteDatabase, TEST_PROVIDER } from '../helpers/databases.ts';
import { CancelPipeline, PipelineDetail, StartPipeline } from '../helpers/operations.ts';
import { alive } from '../helpers/processes.ts';
import { eventually, seedGraph } from '../helpers/seed.ts';
import { freePort, killServerProcesses, startServerProcess, startWorkerProcess, type ServerProcess } from '../helpers/server-process.ts';
import { startTestApp, type TestApp } from '../helpers/test-app.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'dagpipe-roles-'));
afterAll(() => {
  killServerProcesses();
  rmSync(dir, { recursive: true, force: true });
});

let workDirs = 0;
/** A worker process on `databaseUrl`. */
async function startWorker(databaseUrl: string, env: Record<string, string> = {}): Promise<ServerProcess> {
  return startWorkerProcess(databaseUrl, path.join(dir, `work-${++workDirs}`), env);
}

async function started(t: TestApp, graphId: number): Promise<number> {
  const { startPipeline } = await t.request(StartPipeline, { graphId });
  if (startPipeline.__typename !== 'Pipeline') throw new Error(JSON.stringify(startPipeline));
  return startPipeline.id;
}

describe('on SQLite, one process', () => {
  it('refuses a second process on the same database file, saying why and what to use instead', async () => {
    const databaseUrl = freshSqliteDatabase(mkdtempSync(path.join(dir, 'sqlite-')));
    const env = { DATABASE_URL: databaseUrl, WORK_DIR: path.join(dir, 'sqlite-work') };
    const first = await startServerProcess({ ...env, PORT: String(await freePort()) });
    const second = spawn(process.execPath, ['dist/server.js'], {
      env: { ...process.env, AUTH: 'off', SCRIPT_USER: 'root', LOG_LEVEL: 'warn', ...env, PORT: String(await freePort()) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let printed = '';
    second.stdout.on('data', (chunk: Buffer) => (printed += chunk.toString()));
    second.stderr.on('data', (chunk: Buffer) => (printed += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => second.once('exit', resolve));
    expect(code).toBe(2);
    expect(printed).toContain(`Another dagpipe process (pid ${first.pid} on `);
    expect(printed).toMatch(/SQLite serves one process.*stop the other process first.*PostgreSQL and Redis.*docs\/deploy\.md/s);
    expect(printed).not.toMatch(/GraphiQL:|"level":50/);
    // The first one is untouched, and once it has stopped the database is free again.
    expect((await (await fetch(first.url.replace('/graphql', '/health'))).json()).status).toBe('ok');
    await first.stop();
    const third = await startServerProcess({ ...env, PORT: String(await freePort()) });
    await third.stop();
  });
});

describe.runIf(TEST_PROVIDER === 'postgresql')('roles on PostgreSQL', () => {
  let api: TestApp;
  const workers: ServerProcess[] = [];
  beforeAll(async () => {
    api = await startTestApp({ env: { ROLE: 'api' } });
  });
  afterEach(async () => {
    await Promise.all(workers.splice(0).map((w) => w.stop()));
  });
  afterAll(() => api?.stop());

  it('an API process runs no script and says so on /health; a worker serves /health and /metrics only', async () => {
    const health = await (await fetch(api.url.replace('/graphql', '/health'))).json();
    expect(health).toEqual({ status: 'ok', role: 'api' });
    expect(api.app.executor).toBeUndefined();
    const { graphId } = await seedGraph(api, { vertices: { hello: { script: 'echo "hello from $VERTEX_NAME"' } } });
    const pipelineId = await started(api, graphId);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect((await api.request(PipelineDetail, { id: pipelineId })).pipeline!.tracks[0]!.state).toBe('PENDING');

    const { prisma } = await connectDb(api.databaseUrl);
    const { secret } = await createToken(prisma, { name: 'roles-metrics', role: 'viewer' });
    await prisma.$disconnect();
    const worker = await startWorker(api.databaseUrl, { AUTH: 'on', HOST: '127.0.0.1' });
    workers.push(worker);
    expect(worker.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/health$/);
    // The worker runs what the API started; the API reads its output from the database.
    const done = await eventually(async () => {
      const { pipeline } = await api.request(PipelineDetail, { id: pipelineId });
      return pipeline!.state === 'FINISH' ? pipeline! : undefined;
    });
    expect(done.tracks[0]!.output).toMatchObject({ text: 'hello from hello\n', complete: true });

    const workerHealth = await (await fetch(worker.url)).json();
    expect(workerHealth).toMatchObject({ status: 'ok', role: 'worker', executor: { workers: 2, running: 0 } });
    const base = worker.url.replace(/\/health$/, '');
    for (const [method, route] of [
      ['GET', '/graphql'],
      ['POST', '/graphql'],
      ['GET', '/'],
    ] as const) {
      const response = await fetch(`${base}${route}`, { method, ...(method === 'POST' && { body: '{"query":"{ graphs { id } }"}', headers: { 'content-type': 'application/json' } }) });
      expect(response.status).toBe(404);
      expect(await response.text()).toMatch(/This is a dagpipe worker \(ROLE=worker\).*only \/health and \/metrics.*API processes \(ROLE=api/);
    }
    // /metrics: the same rule as on the API (any token).
    const refused = await fetch(`${base}/metrics`);
    expect(refused.status).toBe(401);
    expect(await refused.text()).toContain('Metrics need an API token');
    const metrics = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${secret}` } });
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toMatch(/^dagpipe_tracks\{state="SUCCEED"\} 1$/m);
  });

  it('a pipeline started on the API starts on a worker at once, by LISTEN, not at its next poll; also after the listening connection was cut', async () => {
    const pollMs = 60_000;
    const worker = await startWorker(api.databaseUrl, { POLL_INTERVAL_MS: String(pollMs) });
    workers.push(worker);
    const stamps = path.join(dir, 'stamps');
    const { graphId } = await seedGraph(api, { vertices: { stamp: { script: `date +%s%3N > ${stamps}-$PIPELINE_ID` } } });
    /** From the start mutation's response to the script's own clock reading, in ms. */
    const startDelay = async () => {
      const pipelineId = await started(api, graphId);
      const respondedAt = Date.now();
      const file = `${stamps}-${pipelineId}`;
      const stamp = await eventually(
        async () => (existsSync(file) && readFileSync(file, 'utf8').trim() ? Number(readFileSync(file, 'utf8')) : undefined),
        20_000,
        'the script to start',
      ).catch((error: Error) => {
        throw new Error(`${error.message}; the worker printed: ${worker.output()}`);
      });
      return stamp - respondedAt;
    };
    const listenerBackends = async () => {
      const client = new pg.Client({ connectionString: api.databaseUrl });
      await client.connect();
      try {
        const { rows } = await client.query<{ pid: number }>(
          `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1 AND query LIKE 'LISTEN%'`,
          [LISTENER_APPLICATION_NAME],
        );
        return rows.map((r) => r.pid);
      } finally {
        await client.end();
      }
    };

    const delays = [await startDelay(), await startDelay()];
    const [listener] = await eventually(async () => ((await listenerBackends()).length === 1 ? listenerBackends() : undefined));
    const admin = new pg.Client({ connectionString: api.databaseUrl });
    await admin.connect();
    await admin.query('SELECT pg_terminate_backend($1)', [listener]);
    await admin.end();
    // It reconnects (with backoff) and listens again.
    await eventually(async () => {
      const backends = await listenerBackends();
      return backends.length === 1 && backends[0] !== listener ? true : undefined;
    }, 15_000, 'the listener to reconnect');
    delays.push(await startDelay());
    console.log(`start delays after the start mutation's response (POLL_INTERVAL_MS=${pollMs}): ${delays.join(', ')} ms`);
    // Tens of milliseconds here, a few hundred on a loaded machine; without LISTEN, up to
    // the poll interval (the wait above gives up after 20 s).
    for (const delay of delays) expect(delay).toBeLessThan(pollMs / 20);
  });

  it('a cancel on the API kills the script on the worker at once, not at its next heartbeat', async () => {
    const worker = await startWorker(api.databaseUrl, { HEARTBEAT_INTERVAL_MS: '60000' });
    workers.push(worker);
    const pidFile = path.join(dir, 'cancelled.pid');
    const { graphId } = await seedGraph(api, { vertices: { long: { script: `echo $$ > ${pidFile}; sleep 60` } } });
    const pipelineId = await started(api, graphId);
    const scriptPid = await eventually(async () => (existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim() ? Number(readFileSync(pidFile, 'utf8')) : undefined));
    expect((await api.request(CancelPipeline, { id: pipelineId })).cancelPipeline.__typename).toBe('Pipeline');
    const cancelledAt = Date.now();
    await eventually(async () => (alive(scriptPid) ? undefined : true), 10_000, 'the script to be killed');
    const killedAfter = Date.now() - cancelledAt;
    console.log(`script killed ${killedAfter} ms after the cancel (HEARTBEAT_INTERVAL_MS=60000)`);
    expect(killedAfter).toBeLessThan(5000);
    const { pipeline } = await api.request(PipelineDetail, { id: pipelineId });
    expect(pipeline).toMatchObject({ state: 'CANCELLED', tracks: [{ state: 'CANCELLED', reason: 'cancelled by an operator' }] });
  });
});
