/**
 * Property-based tests of the pure engine (issue 4, item 6), with fast-check.
 *
 * A small simulator plays the store's part (claims, results, cancel, retry) on random
 * DAGs with random outcomes, worker counts and completion orders, and takes every state
 * decision from the engine's functions (initialStates, promotableSuccessors,
 * pipelineStateAfterSuccess, cancellationsAfterFailure, cancellationsForCancel,
 * retryChanges, afterFailedAttempt). It checks: every run ends FINISH, FAILED or CANCELLED
 * with no track left unfinished; no track starts before all its predecessors succeeded; no
 * track runs twice in one attempt; a failure fails the pipeline and cancels every
 * never-started track with a reason naming the failed one; retry re-runs with attempt + 1
 * and converges. Automatic retries (SPEC rule 13) on a simulated clock: a failed attempt
 * with retries left runs again as attempt + 1, never before its delay, the pipeline still
 * running; a track has at most retries + 1 attempts per run; the last failure is the one
 * that fails the pipeline.
 * Also: cycle detection against a reference algorithm, value conversion (a right-typed
 * value or a ValidationError naming the field, nothing else) and rendering (each value
 * is exactly one shell-quoted word that parses back to the value).
 *
 * Reproduce a failure with FC_SEED=<seed printed below> npx vitest run test/engine/properties.test.ts
 */
import fc from 'fast-check';
import { isIP } from 'node:net';
import { describe, expect, it } from 'vitest';
import { CycleError, ValidationError } from '../../src/errors.ts';
import { buildDag, checkGraphDefinition, findCycle, type Dag } from '../../src/engine/dag.ts';
import {
  convertValue,
  MAX_VALUE_LENGTH,
  PARAM_TYPES,
  parseInputSchema,
  resolveParams,
  type ParamSpec,
  type ParamValue,
} from '../../src/engine/inputs.ts';
import { LIMITS, optionalText, requireName, requireScript } from '../../src/engine/fields.ts';
import { PipelineState, TrackState } from '../../src/engine/states.ts';
import { inputEnvironment, renderScript, shellQuote } from '../../src/engine/template.ts';
import { MAX_RETRY_DELAY_SECONDS, type RetryPolicy } from '../../src/engine/retry-policy.ts';
import {
  afterFailedAttempt,
  cancellationsAfterFailure,
  cancellationsForCancel,
  initialStates,
  pipelineStateAfterSuccess,
  promotableSuccessors,
  retryChanges,
  type TrackChange,
  type TrackView,
} from '../../src/engine/transitions.ts';
import { fcSeed, hostileString } from '../helpers/hostile.ts';

const seed = fcSeed('test/engine/properties.test.ts');
const params = (numRuns: number): fc.Parameters<unknown> => ({ seed, numRuns });

const { WAITING, PENDING, RUNNING, SUCCEED, FAILED, CANCELLED } = TrackState;

// ---------------------------------------------------------------------------------------
// The simulator
// ---------------------------------------------------------------------------------------

interface Scenario {
  /** Vertex ids (distinct, random: not their index, not sorted). */
  ids: number[];
  /** Edges as index pairs [tail, head] with tail < head: acyclic by construction. */
  edges: Array<[number, number]>;
  /** outcomes[round][i]: does vertex i's script succeed when claimed after `round` retries? Later rounds succeed. */
  outcomes: boolean[][];
  workers: number;
  /** Random choices: which process completes next, which pending track is claimed, when to cancel or retry. */
  choices: number[];
  /** How many times an operator may cancel. */
  cancels: number;
  /** Each vertex's automatic retries (by index). */
  policies: RetryPolicy[];
  /** retryOutcomes[i][k]: does vertex i's automatic retry k + 1 succeed? Later ones do. */
  retryOutcomes: boolean[][];
}

interface Process {
  vertexId: number;
  attempt: number;
  succeeds: boolean;
}

const CANCEL_REASON = 'cancelled by an operator';

/** Reference reachability (not the engine's descendants()). */
function reachableFrom(scenario: Scenario, from: number): Set<number> {
  const seen = new Set<number>();
  const stack = [from];
  while (stack.length > 0) {
    const at = stack.pop()!;
    for (const [tail, head] of scenario.edges) {
      if (tail === at && !seen.has(head)) {
        seen.add(head);
        stack.push(head);
      }
    }
  }
  return seen;
}

/** A cheap assertion for the simulator's hot loop; the failure carries the run's log. */
function ensure(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

function sameIds(changes: readonly TrackChange[], tracks: readonly TrackView[]): boolean {
  const ids = new Set(changes.map((c) => c.trackId));
  return ids.size === changes.length && ids.size === tracks.length && tracks.every((t) => ids.has(t.id));
}

class Simulation {
  readonly dag: Dag;
  readonly name = new Map<number, string>();
  readonly trackId = new Map<number, number>();
  readonly vertexOfTrack = new Map<number, number>();
  readonly state = new Map<number, TrackState>();
  readonly attempt = new Map<number, number>();
  readonly reason = new Map<number, string | undefined>();
  pipeline: PipelineState = PipelineState.RUNNING;
  processes: Process[] = [];
  /** `${vertexId}@${attempt}` of every claim ever made. */
  readonly claims = new Set<string>();
  /** The track whose failure failed the pipeline in this round (since start or the last retry). */
  failedBy: number | undefined;
  /** The simulated clock, in seconds; it moves on to the end of a retry's delay. */
  now = 0;
  /** Per vertex: automatic retries taken in this round, and when the pending retry may be claimed. */
  readonly retryCount = new Map<number, number>();
  readonly notBefore = new Map<number, number>();
  /** Per vertex: attempts claimed in this round (since start or the last operator retry). */
  readonly claimsThisRound = new Map<number, number>();
  /** Per vertex: the most attempts claimed in any one round. */
  readonly mostClaimsInARound = new Map<number, number>();
  /** Per vertex: the delay of each automatic retry, in order. */
  readonly delays = new Map<number, number[]>();
  retries = 0;
  readonly maxRetries: number;
  cancelsLeft: number;
  private choiceAt = 0;
  readonly log: string[] = [];

  /** @param retries how often an operator retries a failed or cancelled run (default: until it must finish). */
  constructor(
    readonly scenario: Scenario,
    retries?: number,
  ) {
    // After outcomes.length retries every new claim succeeds; processes claimed earlier
    // (at most `workers` at a time) can each fail the pipeline once more.
    this.maxRetries = retries ?? scenario.outcomes.length + scenario.workers + 1;
    const { ids, edges } = scenario;
    this.dag = buildDag(
      ids,
      edges.map(([t, h]) => ({ tailId: ids[t]!, headId: ids[h]! })),
    );
    ids.forEach((id, i) => {
      this.name.set(id, `v${i}`);
      this.trackId.set(id, 5000 + id * 3); // track ids differ from vertex ids
      this.vertexOfTrack.set(5000 + id * 3, id);
      this.attempt.set(id, 1);
      this.retryCount.set(id, 0);
      this.claimsThisRound.set(id, 0);
    });
    for (const [id, state] of initialStates(this.dag)) this.state.set(id, state);
    this.cancelsLeft = scenario.cancels;
  }

  private choose(n: number): number {
    const { choices } = this.scenario;
    const value = choices[this.choiceAt++ % choices.length]! + Math.floor(this.choiceAt / choices.length);
    return value % n;
  }

  private views(states?: readonly TrackState[]): TrackView[] {
    return this.scenario.ids
      .filter((id) => states === undefined || states.includes(this.state.get(id)!))
      .map((id) => ({ id: this.trackId.get(id)!, vertexId: id, name: this.name.get(id)!, state: this.state.get(id)! }));
  }

  private apply(changes: readonly TrackChange[], from: readonly TrackState[], retry = false): void {
    for (const change of changes) {
      const vertexId = this.vertexOfTrack.get(change.trackId);
      ensure(vertexId !== undefined, `change names an unknown track ${change.trackId}`);
      // Like the store: every update keeps the precondition "state IN from".
      if (!from.includes(this.state.get(vertexId!)!)) continue;
      this.state.set(vertexId!, change.to);
      this.reason.set(vertexId!, change.reason);
      if (retry) {
        // Like the store: a fresh budget of automatic retries, no delay.
        this.attempt.set(vertexId!, this.attempt.get(vertexId!)! + 1);
        this.retryCount.set(vertexId!, 0);
        this.notBefore.delete(vertexId!);
      }
    }
  }

  private policyOf(vertexId: number): RetryPolicy {
    return this.scenario.policies[this.scenario.ids.indexOf(vertexId)]!;
  }

  /** PENDING tracks whose retry delay is not over (the claim skips them). */
  private delayed(): number[] {
    return this.scenario.ids.filter((id) => this.state.get(id) === PENDING && (this.notBefore.get(id) ?? 0) > this.now);
  }

  /** The clock moves on to the end of the next retry delay (the executor's timer). */
  private tick(): void {
    const next = Math.min(...this.delayed().map((id) => this.notBefore.get(id)!));
    ensure(next > this.now, 'time moves forward');
    this.log.push(`tick ${this.now} -> ${next}`);
    this.now = next;
  }

  /** Claims PENDING tracks into free workers, in random order (the store: by id). */
  private claim(): void {
    while (this.pipeline === PipelineState.RUNNING && this.processes.length < this.scenario.workers) {
      const pending = this.scenario.ids.filter((id) => this.state.get(id) === PENDING && (this.notBefore.get(id) ?? 0) <= this.now);
      if (pending.length === 0) return;
      const vertexId = pending[this.choose(pending.length)]!;
      const attempt = this.attempt.get(vertexId)!;
      // Property: no track starts before all its predecessors succeeded.
      for (const p of this.dag.predecessors.get(vertexId)!) {
        ensure(this.state.get(p) === SUCCEED, `${this.name.get(vertexId)} started before its predecessor ${this.name.get(p)} succeeded`);
      }
      // Property: no track runs twice in one attempt.
      const key = `${vertexId}@${attempt}`;
      ensure(!this.claims.has(key), `${this.name.get(vertexId)} claimed twice in attempt ${attempt}`);
      this.claims.add(key);
      this.state.set(vertexId, RUNNING);
      // Property: at most retries + 1 attempts of a track per run.
      const claims = this.claimsThisRound.get(vertexId)! + 1;
      this.claimsThisRound.set(vertexId, claims);
      this.mostClaimsInARound.set(vertexId, Math.max(claims, this.mostClaimsInARound.get(vertexId) ?? 0));
      ensure(claims <= this.policyOf(vertexId).retries + 1, `${this.name.get(vertexId)} ran ${claims} times with ${this.policyOf(vertexId).retries} retries`);
      const index = this.scenario.ids.indexOf(vertexId);
      const retryNumber = this.retryCount.get(vertexId)!;
      const succeeds =
        retryNumber > 0
          ? (this.scenario.retryOutcomes[index]?.[retryNumber - 1] ?? true)
          : this.retries < this.scenario.outcomes.length
            ? this.scenario.outcomes[this.retries]![index]!
            : true;
      this.processes.push({ vertexId, attempt, succeeds });
      this.log.push(`claim ${this.name.get(vertexId)}@${attempt}`);
    }
  }

  /** A process ends; its result is written only if it still holds the track (fencing). */
  private complete(process: Process): void {
    const { vertexId } = process;
    const name = this.name.get(vertexId)!;
    this.log.push(`${process.succeeds ? 'succeed' : 'fail'} ${name}@${process.attempt}`);
    if (this.state.get(vertexId) !== RUNNING || this.attempt.get(vertexId) !== process.attempt) {
      this.log.push('  stale');
      return;
    }
    if (process.succeeds) {
      this.state.set(vertexId, SUCCEED);
      const ready = promotableSuccessors(this.dag, vertexId, (id) => this.state.get(id));
      for (const successor of ready) {
        ensure(this.dag.successors.get(vertexId)!.includes(successor), `${this.name.get(successor)} promoted but is no successor of ${name}`);
        ensure(this.state.get(successor) === WAITING, `${this.name.get(successor)} promoted from ${this.state.get(successor)}`);
        // A failed or cancelled pipeline starts nothing new (the store's update checks it).
        if (this.pipeline === PipelineState.RUNNING) this.state.set(successor, PENDING);
      }
      const unsucceeded = this.scenario.ids.filter((id) => this.state.get(id) !== SUCCEED).length;
      if (pipelineStateAfterSuccess(unsucceeded) === PipelineState.FINISH) {
        // The store only looks for FINISH after a sink succeeded: check that assumption.
        ensure(this.dag.successors.get(vertexId)!.length === 0, `${name} was the last to succeed but is not a sink`);
        if (this.pipeline === PipelineState.RUNNING) this.pipeline = PipelineState.FINISH;
      } else {
        ensure(unsucceeded > 0, 'not finished with every track succeeded');
      }
      return;
    }
    const policy = this.policyOf(vertexId);
    const taken = this.retryCount.get(vertexId)!;
    const decision = afterFailedAttempt(policy, taken, this.pipeline);
    if (decision.retry) {
      // Retried: attempt + 1, PENDING after the delay; the pipeline and the others unchanged.
      ensure(this.pipeline === PipelineState.RUNNING && taken < policy.retries, `${name} retried with ${taken} of ${policy.retries} taken, pipeline ${this.pipeline}`);
      ensure(decision.retryNumber === taken + 1, 'retries are numbered 1, 2, 3, ...');
      const expected = Math.min(MAX_RETRY_DELAY_SECONDS, policy.retryDelaySeconds * policy.retryBackoff ** taken);
      ensure(decision.delaySeconds === expected && decision.delaySeconds >= 0, `delay ${decision.delaySeconds}, expected ${expected}`);
      this.state.set(vertexId, PENDING);
      this.attempt.set(vertexId, process.attempt + 1);
      this.retryCount.set(vertexId, decision.retryNumber);
      this.notBefore.set(vertexId, this.now + decision.delaySeconds);
      this.delays.set(vertexId, [...(this.delays.get(vertexId) ?? []), decision.delaySeconds]);
      this.log.push(`  retry ${decision.retryNumber} at ${this.now + decision.delaySeconds}`);
      return;
    }
    ensure(this.pipeline !== PipelineState.RUNNING || taken === policy.retries, `${name} failed with retries left`);
    this.state.set(vertexId, FAILED);
    if (this.pipeline !== PipelineState.RUNNING) return; // already failed or cancelled
    this.pipeline = PipelineState.FAILED;
    this.failedBy = vertexId;
    const waiting = this.views([WAITING, PENDING]);
    const changes = cancellationsAfterFailure(this.dag, { id: this.trackId.get(vertexId)!, vertexId, name, state: FAILED }, waiting);
    // Exactly the tracks that will now never run, each with a reason naming the failed one.
    ensure(sameIds(changes, waiting), 'the failure cancels exactly the WAITING and PENDING tracks');
    const downstream = reachableFrom(this.scenario, this.scenario.ids.indexOf(vertexId));
    for (const change of changes) {
      ensure(change.to === CANCELLED, 'a failure only cancels');
      const index = this.scenario.ids.indexOf(this.vertexOfTrack.get(change.trackId)!);
      const expected = downstream.has(index) ? `upstream ${name} failed` : `not started: the pipeline failed because ${name} failed`;
      ensure(change.reason === expected, `reason ${change.reason}, expected ${expected}`);
    }
    this.apply(changes, [WAITING, PENDING]);
  }

  private cancel(): void {
    this.log.push('cancel');
    this.cancelsLeft--;
    this.pipeline = PipelineState.CANCELLED;
    const open = this.views([WAITING, PENDING, RUNNING]);
    const changes = cancellationsForCancel(this.views(), CANCEL_REASON);
    ensure(sameIds(changes, open), 'cancel cancels exactly the unfinished tracks');
    ensure(changes.every((c) => c.to === CANCELLED && c.reason === CANCEL_REASON), 'cancel cancels with its reason');
    this.apply(changes, [WAITING, PENDING, RUNNING]);
    // The executor kills the cancelled processes; their late results are stale.
  }

  private retry(): void {
    this.log.push('retry');
    const before = new Map(this.scenario.ids.map((id) => [id, { state: this.state.get(id)!, attempt: this.attempt.get(id)! }]));
    const changes = retryChanges(this.dag, this.views());
    this.apply(changes, [FAILED, CANCELLED], true);
    for (const id of this.scenario.ids) {
      const was = before.get(id)!;
      if (was.state === FAILED || was.state === CANCELLED) {
        // Back into play with attempt + 1: PENDING iff every predecessor succeeded.
        ensure(this.attempt.get(id) === was.attempt + 1, `retried ${this.name.get(id)} is not at attempt + 1`);
        const ready = this.dag.predecessors.get(id)!.every((p) => before.get(p)!.state === SUCCEED);
        ensure(this.state.get(id) === (ready ? PENDING : WAITING), `retried ${this.name.get(id)} is ${this.state.get(id)}`);
        this.reason.set(id, undefined);
      } else {
        // Succeeded (and still running) tracks are kept as they are.
        ensure(this.state.get(id) === was.state && this.attempt.get(id) === was.attempt, `retry changed ${this.name.get(id)}`);
      }
    }
    this.pipeline = PipelineState.RUNNING;
    this.retries++;
    this.failedBy = undefined;
    for (const id of this.scenario.ids) this.claimsThisRound.set(id, 0);
  }

  /** Invariants that hold after every step. */
  private checkInvariants(): void {
    for (const id of this.scenario.ids) {
      const state = this.state.get(id)!;
      if (state === SUCCEED || state === PENDING || state === RUNNING) {
        // A track only gets going once all its predecessors succeeded, and success is final.
        for (const p of this.dag.predecessors.get(id)!) {
          ensure(this.state.get(p) === SUCCEED, `${this.name.get(id)} is ${state} but its predecessor ${this.name.get(p)} is not SUCCEED`);
        }
      }
    }
    if (this.pipeline === PipelineState.FINISH) {
      for (const id of this.scenario.ids) ensure(this.state.get(id) === SUCCEED, `FINISH with ${this.name.get(id)} not SUCCEED`);
    }
  }

  /** When the pipeline has ended and every process has exited. */
  private checkEnded(): void {
    ensure(this.pipeline !== PipelineState.RUNNING, 'the pipeline ended');
    if (this.pipeline === PipelineState.FAILED) {
      ensure(this.failedBy !== undefined && this.state.get(this.failedBy) === FAILED, 'a FAILED pipeline has the FAILED track that failed it');
      // Only the last failure fails the pipeline: the track that did had used all its retries.
      ensure(this.retryCount.get(this.failedBy) === this.policyOf(this.failedBy).retries, `${this.name.get(this.failedBy)} failed the pipeline with retries left`);
    }
    for (const id of this.scenario.ids) {
      const state = this.state.get(id)!;
      const name = this.name.get(id)!;
      const ran = this.claims.has(`${id}@${this.attempt.get(id)}`);
      // Nothing is left waiting forever.
      ensure(state === SUCCEED || state === FAILED || state === CANCELLED, `${name} ended ${state}`);
      if (state === SUCCEED || state === FAILED) ensure(ran, `${name} is ${state} without having run`);
      if (state === FAILED) ensure(this.pipeline === PipelineState.FAILED, `${name} FAILED but the pipeline did not`);
      if (state === CANCELLED && this.pipeline === PipelineState.FAILED) {
        // Never started in this attempt, and told which track's failure stopped it.
        ensure(!ran, `${name} ran, yet was cancelled by the failure`);
        ensure(this.reason.get(id)?.includes(`${this.name.get(this.failedBy!)} failed`) === true, `${name}: reason ${this.reason.get(id)}`);
      }
      if (state === CANCELLED && this.pipeline === PipelineState.CANCELLED) ensure(this.reason.get(id) === CANCEL_REASON, `${name}: reason ${this.reason.get(id)}`);
    }
  }

  /** Runs until the pipeline ended, every process exited and no retry is left. */
  run(): void {
    try {
      this.steps();
    } catch (error) {
      throw new Error(`${(error as Error).message}\n  after: ${this.log.join(', ')}`);
    }
  }

  private steps(): void {
    for (let step = 0; ; step++) {
      ensure(step < 10_000, 'the simulation does not end');
      this.claim();
      this.checkInvariants();
      if (this.processes.length === 0 && this.pipeline === PipelineState.RUNNING && this.delayed().length > 0) {
        // Nothing runs, only retries wait: the next wake-up is the end of a delay.
        this.tick();
        continue;
      }
      if (this.processes.length === 0) {
        // Property: a RUNNING pipeline with nothing running and nothing claimable is stuck.
        ensure(this.pipeline !== PipelineState.RUNNING, 'stuck: RUNNING with nothing running and nothing to claim');
        this.checkEnded();
      }
      const actions: Array<'complete' | 'cancel' | 'retry' | 'tick'> = [];
      if (this.processes.length > 0) actions.push('complete', 'complete', 'complete', 'complete');
      if (this.pipeline === PipelineState.RUNNING && this.delayed().length > 0) actions.push('tick');
      if (this.pipeline === PipelineState.RUNNING && this.cancelsLeft > 0) actions.push('cancel');
      const retriable = this.pipeline === PipelineState.FAILED || this.pipeline === PipelineState.CANCELLED;
      if (retriable && this.retries < this.maxRetries) actions.push('retry');
      if (actions.length === 0) return;
      const action = this.processes.length === 0 && retriable ? 'retry' : actions[this.choose(actions.length)]!;
      if (action === 'complete') this.complete(this.processes.splice(this.choose(this.processes.length), 1)[0]!);
      else if (action === 'cancel') this.cancel();
      else if (action === 'tick') this.tick();
      else this.retry();
    }
  }
}

// ---------------------------------------------------------------------------------------
// Arbitraries
// ---------------------------------------------------------------------------------------

/** n vertices, random edges from lower to higher index (a DAG), random distinct ids. */
const dagShape = (maxVertices: number) =>
  fc.integer({ min: 1, max: maxVertices }).chain((n) => {
    const pairs: Array<[number, number]> = [];
    for (let t = 0; t < n; t++) for (let h = t + 1; h < n; h++) pairs.push([t, h]);
    return fc.record({
      ids: fc.uniqueArray(fc.integer({ min: 1, max: 100_000 }), { minLength: n, maxLength: n }),
      edges: fc.subarray(pairs),
      n: fc.constant(n),
    });
  });

/** Mostly small, sometimes none, sometimes a delay that reaches the cap. */
const retryPolicy: fc.Arbitrary<RetryPolicy> = fc.record({
  retries: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 3 })),
  retryDelaySeconds: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 30 }), fc.constant(MAX_RETRY_DELAY_SECONDS)),
  retryBackoff: fc.oneof(fc.constant(1), fc.constant(2), fc.double({ min: 1, max: 10, noNaN: true })),
});

const scenario: fc.Arbitrary<Scenario> = dagShape(12).chain(({ ids, edges, n }) =>
  fc.record({
    ids: fc.constant(ids),
    edges: fc.constant(edges),
    outcomes: fc.array(fc.array(fc.boolean(), { minLength: n, maxLength: n }), { minLength: 1, maxLength: 3 }),
    workers: fc.integer({ min: 1, max: 4 }),
    choices: fc.array(fc.nat({ max: 1000 }), { minLength: 1, maxLength: 60 }),
    cancels: fc.integer({ min: 0, max: 2 }),
    policies: fc.array(retryPolicy, { minLength: n, maxLength: n }),
    retryOutcomes: fc.array(fc.array(fc.boolean(), { maxLength: 3 }), { minLength: n, maxLength: n }),
  }),
);

const NO_RETRIES: RetryPolicy = { retries: 0, retryDelaySeconds: 10, retryBackoff: 2 };

// ---------------------------------------------------------------------------------------
// Runs
// ---------------------------------------------------------------------------------------

describe('pipeline runs on random DAGs', () => {
  it('end FINISH, FAILED or CANCELLED; start tracks only after their predecessors; never twice per attempt; retry converges', () => {
    fc.assert(
      fc.property(scenario, (s) => {
        const sim = new Simulation(s);
        sim.run();
        // Retried often enough, a graph whose scripts succeed always finishes.
        expect(sim.pipeline, sim.log.join(', ')).toBe(PipelineState.FINISH);
      }),
      params(400),
    );
  });

  it('with automatic retries and no operator: every run still ends, and no track has more than retries + 1 attempts', () => {
    fc.assert(
      fc.property(scenario, (s) => {
        const sim = new Simulation(s, 0);
        sim.run();
        expect([PipelineState.FINISH, PipelineState.FAILED, PipelineState.CANCELLED]).toContain(sim.pipeline);
        for (const [i, id] of s.ids.entries()) {
          expect(sim.attempt.get(id)!).toBeLessThanOrEqual(s.policies[i]!.retries + 1);
          expect(sim.mostClaimsInARound.get(id) ?? 0).toBeLessThanOrEqual(s.policies[i]!.retries + 1);
        }
      }),
      params(400),
    );
  });

  it('without failures or cancels a run finishes in one attempt, each track run exactly once', () => {
    fc.assert(
      fc.property(scenario, (s) => {
        const sim = new Simulation({ ...s, outcomes: [s.ids.map(() => true)], cancels: 0 });
        sim.run();
        expect(sim.pipeline).toBe(PipelineState.FINISH);
        expect(sim.retries).toBe(0);
        expect(sim.claims).toEqual(new Set(s.ids.map((id) => `${id}@1`)));
      }),
      params(200),
    );
  });

  it('one failing track fails the pipeline and cancels every never-started track, naming it', () => {
    fc.assert(
      fc.property(scenario, fc.nat(), (s, pick) => {
        const failing = pick % s.ids.length;
        const outcomes = [s.ids.map((_, i) => i !== failing)];
        // Every automatic retry fails too: only the others' first attempts succeed.
        const retryOutcomes = s.ids.map(() => Array.from({ length: 10 }, () => false));
        const sim = new Simulation({ ...s, outcomes, retryOutcomes, cancels: 0 }, 0);
        sim.run();
        expect(sim.pipeline).toBe(PipelineState.FAILED);
        const failedId = s.ids[failing]!;
        // It ran once and then once per retry, each a new attempt.
        const retries = s.policies[failing]!.retries;
        expect(sim.attempt.get(failedId)).toBe(retries + 1);
        expect([...sim.claims].filter((c) => c.startsWith(`${failedId}@`)).sort()).toEqual(
          Array.from({ length: retries + 1 }, (_, k) => `${failedId}@${k + 1}`).sort(),
        );
        const delays = sim.delays.get(failedId) ?? [];
        expect(delays).toHaveLength(retries);
        delays.forEach((delay, k) => {
          const { retryDelaySeconds, retryBackoff } = s.policies[failing]!;
          expect(delay).toBe(Math.min(MAX_RETRY_DELAY_SECONDS, retryDelaySeconds * retryBackoff ** k));
          if (k > 0) expect(delay).toBeGreaterThanOrEqual(delays[k - 1]!);
        });
        expect(sim.failedBy).toBe(failedId);
        expect(sim.state.get(failedId)).toBe(FAILED);
        const downstream = reachableFrom(s, failing);
        for (const [i, id] of s.ids.entries()) {
          // Every track downstream of the failure never ran and says why.
          if (downstream.has(i)) {
            expect(sim.state.get(id)).toBe(CANCELLED);
            expect(sim.reason.get(id)).toBe(`upstream v${failing} failed`);
            expect([...sim.claims].some((c) => c.startsWith(`${id}@`))).toBe(false);
          } else if (i !== failing) {
            expect([SUCCEED, CANCELLED]).toContain(sim.state.get(id));
            if (sim.state.get(id) === CANCELLED) {
              expect(sim.reason.get(id)).toBe(`not started: the pipeline failed because v${failing} failed`);
            }
          }
        }
      }),
      params(200),
    );
  });
});

// ---------------------------------------------------------------------------------------
// Cycles
// ---------------------------------------------------------------------------------------

/** Reference: Kahn's algorithm. */
function isAcyclic(n: number, edges: ReadonlyArray<readonly [number, number]>): boolean {
  const indegree = Array.from({ length: n }, () => 0);
  for (const [, h] of edges) indegree[h]!++;
  const queue = indegree.flatMap((d, i) => (d === 0 ? [i] : []));
  let seen = 0;
  while (queue.length > 0) {
    const at = queue.pop()!;
    seen++;
    for (const [t, h] of edges) if (t === at && --indegree[h]! === 0) queue.push(h);
  }
  return seen === n;
}

const anyGraph = fc.integer({ min: 1, max: 9 }).chain((n) =>
  fc.record({
    n: fc.constant(n),
    ids: fc.uniqueArray(fc.integer({ min: 1, max: 100_000 }), { minLength: n, maxLength: n }),
    // Any direction, self-loops included; duplicates are refused by addEdge, so unique.
    edges: fc.uniqueArray(fc.tuple(fc.nat({ max: n - 1 }), fc.nat({ max: n - 1 })), {
      maxLength: 2 * n,
      selector: ([t, h]) => `${t}>${h}`,
    }),
  }),
);

describe('cycle detection', () => {
  it('finds a cycle exactly when there is one, and returns a real one: every step an edge, the first repeated last', () => {
    fc.assert(
      fc.property(anyGraph, ({ n, ids, edges }) => {
        const dag = buildDag(
          ids,
          edges.map(([t, h]) => ({ tailId: ids[t]!, headId: ids[h]! })),
        );
        const cycle = findCycle(dag);
        expect(cycle === null).toBe(isAcyclic(n, edges));
        if (cycle === null) return;
        expect(cycle.length).toBeGreaterThanOrEqual(2);
        expect(cycle[0]).toBe(cycle[cycle.length - 1]);
        expect(new Set(cycle.slice(0, -1)).size).toBe(cycle.length - 1); // a simple cycle
        const edgeSet = new Set(edges.map(([t, h]) => `${ids[t]}>${ids[h]}`));
        for (let i = 0; i + 1 < cycle.length; i++) expect(edgeSet.has(`${cycle[i]}>${cycle[i + 1]}`)).toBe(true);

        // checkGraph reports it by vertex names.
        const names = new Map(ids.map((id, i) => [id, `step ${i}`]));
        let error: unknown;
        try {
          checkGraphDefinition(
            ids.map((id) => ({ id, name: names.get(id)!, input: '{}', script: 'true' })),
            edges.map(([t, h]) => ({ tailId: ids[t]!, headId: ids[h]! })),
          );
        } catch (e) {
          error = e;
        }
        expect(error).toBeInstanceOf(CycleError);
        const path = (error as CycleError).path;
        expect(path[0]).toBe(path[path.length - 1]);
        for (let i = 0; i + 1 < path.length; i++) {
          const t = ids[Number(path[i]!.slice(5))]!;
          const h = ids[Number(path[i + 1]!.slice(5))]!;
          expect(edgeSet.has(`${t}>${h}`)).toBe(true);
        }
      }),
      params(500),
    );
  });

  it('accepts every DAG (edges from lower to higher index) as checked', () => {
    fc.assert(
      fc.property(dagShape(15), ({ ids, edges }) => {
        expect(() =>
          checkGraphDefinition(
            ids.map((id, i) => ({ id, name: `v${i}`, input: '{}', script: 'true' })),
            edges.map(([t, h]) => ({ tailId: ids[t]!, headId: ids[h]! })),
          ),
        ).not.toThrow();
      }),
      params(200),
    );
  });
});

// ---------------------------------------------------------------------------------------
// Inputs and rendering
// ---------------------------------------------------------------------------------------

/** Parses one POSIX shell word made of single-quoted and backslash-escaped parts. */
function parseShellWord(word: string): string {
  let out = '';
  for (let i = 0; i < word.length; i++) {
    const c = word[i]!;
    if (c === "'") {
      const end = word.indexOf("'", i + 1);
      if (end === -1) throw new Error(`unterminated quote in ${JSON.stringify(word)}`);
      out += word.slice(i + 1, end);
      i = end;
    } else if (c === '\\') {
      out += word[++i] ?? '';
    } else {
      throw new Error(`unquoted ${JSON.stringify(c)} in ${JSON.stringify(word)}`);
    }
  }
  return out;
}

function hasType(type: (typeof PARAM_TYPES)[number], value: ParamValue): boolean {
  switch (type) {
    case 'string':
      // Storable and passable to a script: no NUL, no lone surrogate, not over the limit.
      return typeof value === 'string' && value.length <= MAX_VALUE_LENGTH && !value.includes('\u0000') && !/\p{Surrogate}/u.test(value);
    case 'integer':
      return typeof value === 'number' && Number.isSafeInteger(value);
    case 'number':
      return typeof value === 'number' && Number.isFinite(value);
    case 'boolean':
      return typeof value === 'boolean';
    case 'ip':
      return typeof value === 'string' && isIP(value) !== 0;
  }
}

/** Runs `fn`; it must return, or throw a ValidationError whose field is `field` or below it. */
function valueOrFieldError<T>(fn: () => T, field: string): { ok: true; value: T } | { ok: false; error: ValidationError } {
  try {
    return { ok: true, value: fn() };
  } catch (error) {
    expect(error, `threw ${String(error)}`).toBeInstanceOf(ValidationError);
    const { field: named } = error as ValidationError;
    expect(named === field || named.startsWith(`${field}.`), `field ${named} is not under ${field}`).toBe(true);
    expect((error as Error).message).toMatch(/\w/);
    return { ok: false, error: error as ValidationError };
  }
}

const anyValue = fc.oneof(
  hostileString,
  fc.jsonValue(),
  fc.anything(),
  fc.double(),
  fc.integer(),
  fc.boolean(),
  fc.constantFrom('127.0.0.1', '::1', ' 10.0.0.1 ', '1e3', '0x10', 'Infinity', 'NaN', '-0', '9007199254740993', 'yes', 'No', ' true ', '1.5'),
  fc.ipV4(),
  fc.ipV6(),
);

describe('value conversion', () => {
  it('returns a value of the declared type or throws a ValidationError naming the field, for any value', () => {
    fc.assert(
      fc.property(fc.constantFrom(...PARAM_TYPES), anyValue, fc.boolean(), (type, value, secret) => {
        const spec: ParamSpec = { name: 'p', type, required: false, secret };
        const result = valueOrFieldError(() => convertValue(spec, value, 'inputs.0.params.p'), 'inputs.0.params.p');
        if (result.ok) expect(hasType(type, result.value), `${type} gave ${JSON.stringify(result.value)}`).toBe(true);
        else if (secret && typeof value === 'string' && value.length > 3) expect(result.error.message).not.toContain(value);
      }),
      params(2000),
    );
  });

  it('parses any schema into typed parameters or refuses it naming the field; resolving then renders', () => {
    const specValue = fc.oneof(
      fc.record(
        {
          type: fc.oneof(fc.constantFrom('str', 'string', 'int', 'INTEGER', 'float', 'number', 'bool', 'boolean', 'ip', 'constructor', '__proto__'), fc.jsonValue()),
          required: fc.oneof(fc.boolean(), fc.jsonValue()),
          default: anyValue,
          choices: fc.oneof(fc.array(anyValue, { maxLength: 3 }), fc.jsonValue()),
          pattern: fc.oneof(fc.constantFrom('[a-z]+', '.*', '(', '\\', 'a{2,}', '\\p{L}+', '$(id)'), fc.string()),
          secret: fc.oneof(fc.boolean(), fc.jsonValue()),
          description: fc.oneof(fc.string(), fc.jsonValue()),
          extra: fc.jsonValue(),
        },
        { requiredKeys: ['type'] },
      ),
      fc.jsonValue(),
    );
    const name = fc.oneof(fc.constantFrom('p', 'host', 'Host', 'HOST', '_x', '__proto__', 'constructor', 'toString', '1x', 'a-b', 'x'.repeat(49)), fc.string({ maxLength: 6 }));
    const schemaSource = fc.oneof(fc.dictionary(name, specValue, { maxKeys: 4 }), fc.jsonValue(), hostileString);
    fc.assert(
      fc.property(schemaSource, fc.dictionary(name, anyValue, { maxKeys: 4 }), fc.boolean(), (source, given, asText) => {
        const input = asText && typeof source !== 'string' ? JSON.stringify(source) ?? '' : source;
        const parsed = valueOrFieldError(() => parseInputSchema(input, 'inputs'), 'inputs');
        if (!parsed.ok) return;
        for (const spec of parsed.value) {
          if (spec.default !== undefined) expect(hasType(spec.type, spec.default)).toBe(true);
          for (const choice of spec.choices ?? []) expect(hasType(spec.type, choice)).toBe(true);
        }
        const resolved = valueOrFieldError(() => resolveParams(parsed.value, given, 'params'), 'params');
        if (!resolved.ok) return;
        const declared = new Set(parsed.value.map((s) => s.name));
        for (const [key, value] of Object.entries(resolved.value.values)) {
          expect(declared.has(key)).toBe(true);
          expect(hasType(parsed.value.find((s) => s.name === key)!.type, value)).toBe(true);
        }
        const script = [...declared].map((p) => `printf '%s\\n' {${p}}`).join('\n');
        const rendered = renderScript(script, resolved.value.values);
        expect(typeof rendered).toBe('string');
        expect(Object.keys(inputEnvironment(resolved.value.values)).every((k) => /^INPUT_[A-Z0-9_]+$/.test(k))).toBe(true);
      }),
      params(1200),
    );
  });
});

describe('text fields', () => {
  it('names, descriptions and scripts come back trimmed, single-line and valid Unicode, or a ValidationError naming the field', () => {
    const text = fc.oneof(hostileString, fc.string({ unit: 'binary', maxLength: 120 }), fc.constantFrom(' a ', 'x'.repeat(48), 'x'.repeat(49)));
    fc.assert(
      fc.property(text, (value) => {
        const name = valueOrFieldError(() => requireName('name', value, LIMITS.graphName), 'name');
        if (name.ok) {
          expect(name.value).toBe(value.trim());
          expect(name.value.length).toBeGreaterThan(0);
          expect(name.value.length).toBeLessThanOrEqual(LIMITS.graphName);
          expect(name.value).not.toMatch(/[\u0000-\u0008\u000a-\u001f\u007f]|\p{Surrogate}/u);
        }
        const desc = valueOrFieldError(() => optionalText('desc', value, LIMITS.graphDesc), 'desc');
        if (desc.ok && desc.value !== null) expect(desc.value).not.toMatch(/\u0000|\p{Surrogate}/u);
        const script = valueOrFieldError(() => requireScript('script', value), 'script');
        if (script.ok) expect(script.value).not.toMatch(/\u0000|\p{Surrogate}/u);
      }),
      params(600),
    );
  });
});

describe('rendering', () => {
  it("renders a value as exactly one single-quoted shell word that parses back to the value", () => {
    fc.assert(
      fc.property(fc.oneof(hostileString, fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.boolean()), (value) => {
        const rendered = renderScript("printf '%s' {p}", { p: value });
        const text = String(value);
        expect(rendered).toBe(`printf '%s' '${text.replaceAll("'", "'\\''")}'`);
        expect(shellQuote(text)).toBe(rendered.slice("printf '%s' ".length));
        expect(parseShellWord(rendered.slice("printf '%s' ".length))).toBe(text);
      }),
      params(1000),
    );
  });

  it('substitutes in one pass: a value that looks like a placeholder or shell syntax stays data', () => {
    fc.assert(
      fc.property(hostileString, hostileString, (a, b) => {
        const rendered = renderScript('echo {a} {b} {c} ${HOME} $(pwd) {a}', { a, b });
        const qa = shellQuote(a);
        expect(rendered).toBe(`echo ${qa} ${shellQuote(b)} {c} \${HOME} $(pwd) ${qa}`);
      }),
      params(500),
    );
  });
});
