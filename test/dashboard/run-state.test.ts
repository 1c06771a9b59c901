/**
 * The run page's fold (dashboard/src/run-state.ts): a snapshot and then events make the view;
 * an event applied twice, or one the snapshot reflects, changes nothing; a replay (resuming
 * with `after`) ends in the same view as the live stream did.
 */
import { describe, expect, it } from 'vitest';
import { applyBlocked, applyMessages, fromSnapshot, movesBlockedBy, statesByName, type LiveEvent, type LiveMessage, type Snapshot, type TrackRow } from '../../dashboard/src/run-state.ts';

const T0 = '2026-12-02T10:00:00.000Z';
const at = (seconds: number) => new Date(Date.parse(T0) + seconds * 1000).toISOString();

function track(id: number, name: string, over: Partial<TrackRow> = {}): TrackRow {
  return { id, name, state: 'WAITING', attempt: 1, startedAt: null, finishedAt: null, exitCode: null, reason: null, needsInput: false, blockedBy: null, ...over };
}

function snapshot(cursor: number, tracks: TrackRow[], over: Partial<Snapshot> = {}): LiveMessage {
  return {
    snapshot: {
      id: 7,
      name: 'seed',
      state: 'RUNNING',
      desc: null,
      createdAt: T0,
      finishedAt: null,
      cursor,
      blockedBy: null,
      graph: { id: 1, name: 'seed', vertices: tracks.map((t) => ({ name: t.name })), edges: [{ tail: { name: 'A' }, head: { name: 'B' } }] },
      // The snapshot leaves out why tracks wait (the page reads it just after).
      tracks: tracks.map(({ blockedBy: _, ...t }) => ({ ...t, attempts: [{ attempt: t.attempt, state: t.state, startedAt: t.startedAt, finishedAt: t.finishedAt, exitCode: t.exitCode, reason: t.reason }] })),
      ...over,
    },
    event: null,
  };
}

function event(id: number, over: Partial<LiveEvent>): LiveMessage {
  return {
    snapshot: null,
    event: {
      id,
      type: 'track:claimed',
      pipelineState: null,
      trackId: null,
      trackState: null,
      attempt: null,
      reason: null,
      exitCode: null,
      createdAt: at(id),
      pipeline: { finishedAt: null, blockedBy: null },
      track: null,
      ...over,
    },
  };
}

const A = track(1, 'A', { state: 'PENDING', blockedBy: { kind: 'WORKER', message: 'It waits for a free worker.', missingParams: [], until: null, tracks: [] } });
const B = track(2, 'B', { blockedBy: { kind: 'PREDECESSORS', message: 'It waits for A to succeed.', missingParams: [], until: null, tracks: [{ name: 'A' }] } });

const aRunning = event(11, { type: 'track:claimed', trackId: 1, trackState: 'RUNNING', attempt: 1, track: track(1, 'A', { state: 'RUNNING', startedAt: at(1) }) });
const aDone = event(12, { type: 'track:succeeded', trackId: 1, trackState: 'SUCCEED', attempt: 1, exitCode: 0, track: track(1, 'A', { state: 'SUCCEED', startedAt: at(1), finishedAt: at(3), exitCode: 0 }) });
const bReady = event(13, { type: 'track:ready', trackId: 2, trackState: 'PENDING', attempt: 1, track: track(2, 'B', { state: 'PENDING' }) });
const finished = event(14, { type: 'pipeline:finished', pipelineState: 'FINISH', pipeline: { finishedAt: at(9), blockedBy: null } });

describe('run-state', () => {
  it('makes the view from the snapshot', () => {
    const view = fromSnapshot(snapshot(10, [A, B]).snapshot!);
    expect(view.cursor).toBe(10);
    expect([...view.tracks.values()].map((t) => t.name)).toEqual(['A', 'B']);
    expect(Object.fromEntries(statesByName(view))).toEqual({ A: 'PENDING', B: 'WAITING' });
    // Why they wait comes from the read after the snapshot, as of its cursor.
    expect(view.tracks.get(2)?.blockedBy).toBeNull();
    const read = applyBlocked(view, { cursor: 10, tracks: [{ id: 1, blockedBy: A.blockedBy }, { id: 2, blockedBy: B.blockedBy }] });
    expect(read.tracks.get(2)?.blockedBy?.message).toBe('It waits for A to succeed.');
    expect(read.tracks.get(1)?.blockedBy?.message).toBe('It waits for a free worker.');
  });

  it('applies events in order and moves the cursor', () => {
    const view = applyMessages(undefined, [snapshot(10, [A, B]), aRunning, aDone, bReady, finished])!;
    expect(view.cursor).toBe(14);
    expect(Object.fromEntries(statesByName(view))).toEqual({ A: 'SUCCEED', B: 'PENDING' });
    expect(view.state).toBe('FINISH');
    expect(view.finishedAt).toBe(at(9));
    expect(view.attempts.get(1)).toEqual([{ attempt: 1, state: 'SUCCEED', startedAt: at(1), finishedAt: at(3), exitCode: 0, reason: null }]);
  });

  it('ignores an event applied already, and one the snapshot reflects', () => {
    const once = applyMessages(undefined, [snapshot(10, [A, B]), aRunning, aDone])!;
    expect(applyMessages(once, [aRunning, aDone])).toBe(once);
    const twice = applyMessages(undefined, [snapshot(10, [A, B]), aRunning, aRunning, aDone, aDone, aRunning])!;
    expect(twice).toEqual(once);
    expect(twice.attempts.get(1)).toHaveLength(1);
    // The snapshot reflects events up to its cursor: an older one arriving late changes nothing.
    const fresh = applyMessages(undefined, [snapshot(12, [track(1, 'A', { state: 'SUCCEED' }), B])])!;
    expect(applyMessages(fresh, [aRunning])).toBe(fresh);
  });

  it('ends in the same view live and resumed after a cut (events split across batches)', () => {
    const live = applyMessages(undefined, [snapshot(10, [A, B]), aRunning, aDone, bReady, finished]);
    let resumed = applyMessages(undefined, [snapshot(10, [A, B]), aRunning]);
    // The replay after `after: 11` may overlap what had arrived before the cut.
    resumed = applyMessages(resumed, [aRunning]);
    resumed = applyMessages(resumed, [aDone, bReady]);
    resumed = applyMessages(resumed, [finished, bReady]);
    expect(resumed).toEqual(live);
  });

  it('draws a replayed event with the state it set, not the track as it is now', () => {
    // Replayed after the fact, the claimed event's track is already SUCCEED.
    const late = event(11, { type: 'track:claimed', trackId: 1, trackState: 'RUNNING', attempt: 1, track: track(1, 'A', { state: 'SUCCEED', startedAt: at(1), finishedAt: at(3), exitCode: 0 }) });
    const view = applyMessages(undefined, [snapshot(10, [A, B]), late])!;
    expect(view.tracks.get(1)?.state).toBe('RUNNING');
  });

  it('keeps every attempt: an automatic retry and a retryPipeline', () => {
    const failedOnce = event(12, {
      type: 'track:retrying',
      trackId: 1,
      trackState: 'PENDING',
      attempt: 2,
      exitCode: 3,
      reason: 'exit code 3; retry in 1 s',
      track: track(1, 'A', { state: 'PENDING', attempt: 2 }),
    });
    const running2 = event(13, { type: 'track:claimed', trackId: 1, trackState: 'RUNNING', attempt: 2, track: track(1, 'A', { state: 'RUNNING', attempt: 2, startedAt: at(5) }) });
    const failed2 = event(14, {
      type: 'track:failed',
      trackId: 1,
      trackState: 'FAILED',
      attempt: 2,
      exitCode: 3,
      reason: 'exit code 3',
      track: track(1, 'A', { state: 'FAILED', attempt: 2, startedAt: at(5), finishedAt: at(6), exitCode: 3, reason: 'exit code 3' }),
    });
    const pipelineFailed = event(15, { type: 'pipeline:failed', pipelineState: 'FAILED', reason: 'A failed', pipeline: { finishedAt: at(6), blockedBy: null } });
    const retried = event(16, { type: 'track:retried', trackId: 1, trackState: 'PENDING', attempt: 3, track: track(1, 'A', { state: 'PENDING', attempt: 3 }) });
    const view = applyMessages(undefined, [snapshot(10, [A, B]), aRunning, failedOnce, running2, failed2, pipelineFailed, retried])!;
    expect(view.attempts.get(1)?.map((r) => [r.attempt, r.state, r.exitCode])).toEqual([
      [1, 'FAILED', 3],
      [2, 'FAILED', 3],
      [3, 'PENDING', null],
    ]);
    expect(view.attempts.get(1)?.[0]?.startedAt).toBe(at(1));
    expect(view.tracks.get(1)).toMatchObject({ state: 'PENDING', attempt: 3 });
    expect(view.state).toBe('FAILED');
  });

  it('leaves the given view untouched (a render compares by identity)', () => {
    const before = applyMessages(undefined, [snapshot(10, [A, B])])!;
    const tracks = before.tracks;
    const after = applyMessages(before, [aRunning])!;
    expect(after).not.toBe(before);
    expect(before.tracks).toBe(tracks);
    expect(before.tracks.get(1)?.state).toBe('PENDING');
    expect(before.cursor).toBe(10);
  });

  it('takes the pipeline state and its blockedBy from pipeline events', () => {
    const queued = applyMessages(undefined, [snapshot(10, [A, B], { state: 'QUEUED', blockedBy: { kind: 'CONCURRENCY_LIMIT', message: 'Behind 1 run.' } })])!;
    const started = applyMessages(queued, [event(11, { type: 'pipeline:started', pipelineState: 'RUNNING' })])!;
    expect(started.state).toBe('RUNNING');
    expect(started.blockedBy).toBeNull();
  });

  it('takes blockedBy read later, except for rows an event newer than the read rewrote', () => {
    const view = applyMessages(undefined, [snapshot(10, [A, B]), aRunning, aDone])!;
    expect(movesBlockedBy(aDone)).toBe(true);
    expect(movesBlockedBy(aRunning)).toBe(false);
    const failed = { kind: 'PIPELINE_FAILED' as const, message: 'The pipeline failed (C failed), so this track will not run; retryPipeline runs it again.', missingParams: [], until: null, tracks: [{ name: 'C' }] };
    // Read at cursor 11: A's row comes from event 12 and stays; B's (from the snapshot) takes it.
    const read = applyBlocked(view, { cursor: 11, tracks: [{ id: 1, blockedBy: failed }, { id: 2, blockedBy: failed }] });
    expect(read.tracks.get(1)?.blockedBy).toBeNull();
    expect(read.tracks.get(2)?.blockedBy).toEqual(failed);
    expect(applyBlocked(read, { cursor: 12, tracks: [{ id: 2, blockedBy: failed }] })).toBe(read);
  });
});
