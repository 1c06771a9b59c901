/**
 * The README's five-minute tour, run as written: every GraphQL block of it in order against
 * a fresh server with authentication on, the way a reader pastes them into GraphiQL (with
 * the example file pasted where it says, and the server's port where the tour says 4000).
 * What the prose promises is checked against what the server answers.
 */
import { readFileSync } from 'node:fs';
import type { ExecutionResult } from 'graphql';
import { createClient } from 'graphql-ws';
import { afterAll, beforeAll, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createToken } from '../../src/auth/tokens.ts';
import { WEB_SERVER_CHECK } from '../../examples/web-server-check.ts';
import { eventually } from '../helpers/seed.ts';
import { startTestApp, type TestApp } from '../helpers/test-app.ts';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const tour = readme.slice(readme.indexOf('## Five-minute tour'), readme.indexOf('## Command-line client'));
/** The tour's text with its line breaks and indentation as single spaces, for the prose checks. */
const prose = tour.replace(/\s+/g, ' ');

/** The tour's ```graphql blocks, in order, without the list indentation. */
function graphqlBlocks(text: string): string[] {
  return [...text.matchAll(/^( *)```graphql\n([\s\S]*?)^\1```$/gm)].map(([, indent, body]) =>
    body!.replace(new RegExp(`^ {0,${indent!.length}}`, 'gm'), '').trim(),
  );
}

let t: TestApp;
let token: string;
beforeAll(async () => {
  t = await startTestApp({ env: { AUTH: 'on' } });
  token = (await createToken(t.app.store.db, { name: 'me', role: 'admin' })).secret;
});
afterAll(() => t?.stop());

it('the tour works as written, and says what the server does', { timeout: 60_000 }, async () => {
  const port = new URL(t.url).port;
  const blocks = graphqlBlocks(tour).map((block) =>
    block.replace('<paste examples/web-server-check.yaml here>', readFileSync(WEB_SERVER_CHECK, 'utf8')).replaceAll('4000', port),
  );
  expect(blocks).toHaveLength(12);
  const [load, look, start, waiting, watch, supply, result, vertexIds, update, schedule, ticks, pause] = blocks as [
    string, string, string, string, string, string, string, string, string, string, string, string,
  ];
  // GraphiQL with {"Authorization": "Bearer dp_..."} in its Headers tab.
  const run = async (query: string): Promise<any> => {
    const response = await fetch(t.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query }),
    });
    const body = (await response.json()) as ExecutionResult<any>;
    expect(body.errors).toBeUndefined();
    return body.data;
  };

  // 2. Load: import, then check.
  const loaded = await run(load);
  expect(loaded.importGraph).toEqual({ id: 1, name: 'web server check' });
  expect(loaded.checkGraph).toEqual({ checked: true });
  // 3. Look.
  expect((await run(look)).graphs).toMatchObject([{ id: 1, name: 'web server check', checked: true }]);

  // 4. Start: only port-open can run; health waits for it, report for health.
  const started = (await run(start)).startPipeline;
  expect(started.id).toBe(1);
  const byName = (tracks: any[]) => Object.fromEntries(tracks.map((x) => [x.name, x]));
  const first = byName(started.tracks);
  expect(['PENDING', 'RUNNING']).toContain(first['port-open'].state);
  expect(first.health).toMatchObject({ state: 'WAITING', blockedBy: { kind: 'PREDECESSORS' } });
  expect(prose).toContain(`PREDECESSORS\`: "${first.health.blockedBy.message}"`);
  expect(first.report).toMatchObject({ state: 'WAITING', blockedBy: { kind: 'PREDECESSORS' } });
  expect(first.report.blockedBy.message).toContain('operator through finishInput');
  // A second later both checks succeeded and report waits for the input.
  const later = await eventually(async () => {
    const tracks = byName((await run(waiting)).pipeline.tracks);
    return tracks.report.state === 'PENDING' ? tracks : undefined;
  });
  expect(later['port-open'].state).toBe('SUCCEED');
  expect(later.health.state).toBe('SUCCEED');
  expect(later.report.blockedBy.kind).toBe('INPUT');
  expect(prose).toContain(`\`INPUT\`: "${later.report.blockedBy.message}"`);
  // 6. "the report track id from step 4, here 3"
  expect(later.report.id).toBe(3);

  // 5. Watch live (graphql-ws, as GraphiQL's SSE would), then 6. supply the input.
  const ws = createClient({ url: t.wsUrl, webSocketImpl: WebSocket, retryAttempts: 0, connectionParams: { authorization: `Bearer ${token}` } });
  const live: any[] = [];
  let snapshotSeen!: () => void;
  const snapshot = new Promise<void>((resolve) => (snapshotSeen = resolve));
  const finished = new Promise<void>((resolve, reject) => {
    ws.subscribe(
      { query: watch },
      {
        next: (value) => {
          if (value.errors) reject(new Error(JSON.stringify(value.errors)));
          const item = (value.data as any).pipelineLive;
          live.push(item);
          if (item.snapshot) snapshotSeen();
          if (item.event?.pipelineState === 'FINISH') resolve();
        },
        error: reject,
        complete: () => reject(new Error('the subscription ended before FINISH')),
      },
    );
  });
  await snapshot;
  expect(live[0].snapshot.state).toBe('RUNNING');
  expect((await run(supply)).finishInput.script).toContain("'Ada'");
  await finished;
  await ws.dispose();
  const events = live.flatMap((item) => (item.event ? [item.event] : []));
  expect(events.find((e) => e.type === 'track:input')).toMatchObject({ trackState: 'PENDING', track: { name: 'report' } });
  expect(events.filter((e) => e.track?.name === 'report').map((e) => e.trackState)).toEqual(['PENDING', 'RUNNING', 'SUCCEED']);

  // 7. The result, then a vertex id and the sealed graph's refusal.
  const done = (await run(result)).pipeline;
  expect(done.state).toBe('FINISH');
  const output = Object.fromEntries(done.tracks.map((x: any) => [x.name, x.output.text]));
  expect(output['port-open']).toBe(`port ${port} on 127.0.0.1 accepts connections\n`);
  // "port-open's outputs are ip and port ...; health's input holds the values it read from them."
  const tracks = byName(done.tracks);
  expect(tracks['port-open'].outputs).toEqual([
    { name: 'ip', value: '127.0.0.1' },
    { name: 'port', value: port },
  ]);
  expect(tracks.health.input).toEqual({ ip: '127.0.0.1', port: Number(port) });
  expect(prose).toContain("`port-open`'s `outputs` are `ip` and `port`, the lines it wrote to `$DAGPIPE_OUTPUT`; `health`'s `input` holds the values it read from them.");
  expect(JSON.parse(output.health)).toMatchObject({ status: 'ok' });
  expect(output.report).toBe('web server check passed; report signed by Ada\n');
  const vertices = (await run(vertexIds)).graph.vertices;
  expect(vertices.find((v: any) => v.name === 'report').id).toBe(3);
  expect(prose).toContain("with `report`'s (here 3)");
  const refused = (await run(update)).updateVertex;
  expect(refused.field).toBe('id');
  expect(refused.message).toContain('is sealed because a pipeline ran from it');

  // 8. A nightly schedule of the sealed graph: 02:30 in Berlin, with every value a run needs.
  const created = (await run(schedule)).createSchedule;
  expect(created).toMatchObject({ id: 1, name: 'nightly' });
  const next = new Date(created.nextRunAt);
  expect(next.getTime()).toBeGreaterThan(Date.now());
  expect(next.getTime() - Date.now()).toBeLessThanOrEqual(25 * 3600_000);
  expect(new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/Berlin', hour: '2-digit', minute: '2-digit' }).format(next)).toBe('02:30');
  expect([0, 1]).toContain(next.getUTCHours());
  expect(prose).toContain('(`00:30` or `01:30`, by daylight saving)');
  const listed = (await run(ticks)).schedule;
  expect(listed).toMatchObject({ name: 'nightly', cron: '30 2 * * *', timeZone: 'Europe/Berlin', paused: false, nextRunAt: created.nextRunAt, ticks: [] });
  expect((await run(pause)).updateSchedule).toEqual({ paused: true, nextRunAt: null });
  // The definition now carries it.
  const definition = (await run('query { graph(id: 1) { definition } }')).graph.definition as string;
  expect(definition).toContain('schedules:\n  - name: nightly\n    cron: 30 2 * * *\n    timeZone: Europe/Berlin\n');

  // /metrics needs a token of any role.
  const metrics = t.url.replace('/graphql', '/metrics');
  expect((await fetch(metrics)).status).toBe(401);
  expect((await fetch(metrics, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
  expect(prose).toContain('`/metrics`, for a token of any role');
});
