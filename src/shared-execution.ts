/**
 * Fan-out without repeated work: when many clients follow the same pipeline with the same
 * operation (same document, variables and role), each committed event is executed as
 * GraphQL once, its errors masked once, and the result handed to all of them. Without
 * this, a thousand subscribers mean a thousand executions of the same event on the event
 * loop the executor shares.
 *
 * Sharing keys on the event object itself: the bus hands the same object to every
 * subscriber, so only live events are shared; a subscriber's own replay from the database
 * executes as before. Results depend only on the event, the database and the role (the
 * scopes), never on who else is listening.
 *
 * This plugin ends Yoga's subscribe phase (setResultAndStopExecution): the plugins after it
 * never see a subscription. In Yoga those are only its error masking and the AbortError
 * pass-through before it, and this does both itself, with the same maskError, once per
 * shared result. Yoga's masking would instead wrap every subscriber's stream in a hook run
 * per result, which cost ~40% of the server's CPU per delivery in the fan-out bench.
 * Keep it the last plugin that has an onSubscribe hook.
 */
import { createSourceEventStream, execute, print, type ExecutionArgs, type ExecutionResult, type GraphQLError } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { Context } from './context.ts';
import { pushesThrough, pushThrough, type Sink } from './live-push.ts';

type Results = Map<string, Promise<ExecutionResult> | ExecutionResult>;

/** Told of every event delivered to a subscriber, and whether it was executed for it. */
export type SharingObserver = (executed: boolean) => void;

export interface SharedExecutionOptions {
  observe?: SharingObserver;
  /** What a client may see of an error: Yoga's maskedErrors.maskError, with its message. */
  maskError: (error: unknown) => GraphQLError;
}

export function useSharedEventExecution({ observe = () => {}, maskError }: SharedExecutionOptions): Plugin<Context> {
  const byEvent = new WeakMap<object, Results>();
  const masked = (result: ExecutionResult): ExecutionResult =>
    result.errors === undefined ? result : { ...result, errors: result.errors.map((error) => maskError(error)) };
  // As Yoga: an aborted request's AbortError passes unmasked (it ends the response).
  const maskThrown = (error: unknown): never => {
    throw isAbortError(error) ? error : maskError(error);
  };

  const subscribe = async (args: ExecutionArgs) => {
    const stream = await createSourceEventStream(args);
    if (!(Symbol.asyncIterator in stream)) return masked(stream); // errors: nothing to follow
    const context = args.contextValue as Partial<Context> | undefined;
    const key = `${context?.identity?.role ?? '-'}\n${JSON.stringify(args.variableValues ?? {})}\n${args.operationName ?? ''}\n${print(args.document)}`;
    const run = (event: unknown) => {
      observe(true);
      const result = execute({ ...args, rootValue: event });
      return isPromiseLike(result) ? result.then(masked) : masked(result);
    };
    return mapStream(
      stream,
      (event: unknown) => {
        if (typeof event !== 'object' || event === null) return run(event);
        let results = byEvent.get(event);
        if (!results) byEvent.set(event, (results = new Map()));
        const shared = results.get(key);
        if (shared) {
          observe(false);
          return shared;
        }
        const result = run(event);
        results.set(key, result);
        // Once settled, later subscribers take the result itself, without a turn to await it.
        if (isPromiseLike(result)) result.then((settled) => results.set(key, settled), () => undefined);
        return result;
      },
      maskThrown,
    );
  };

  return {
    async onSubscribe({ args, setResultAndStopExecution }) {
      setResultAndStopExecution(await subscribe(args));
    },
  };
}

function isAbortError(error: unknown): boolean {
  return error instanceof DOMException && (error.name === 'AbortError' || error.name === 'TimeoutError');
}

/**
 * `source` mapped item by item; ending the result ends the source (unsubscribes at once),
 * and what the source throws goes through `fail` first. Runs once per subscriber and event,
 * so it takes no extra turn for a result that is already there (a shared one): no async
 * function, no await of a plain value. A source that pushes items through (src/live-push.ts)
 * is pushed through too: an item whose result is there at once goes on at once.
 */
function mapStream<T, R>(source: AsyncIterable<T>, map: (item: T) => R | Promise<R>, fail: (error: unknown) => never): AsyncGenerator<R, void, void> {
  const iterator = source[Symbol.asyncIterator]();
  /** The item the sink declined last (its result is a promise, or the sink could not take it): next() takes its result rather than mapping it again. */
  let declined: { item: T; value: R | Promise<R> } | undefined;
  const mapOnce = (item: T): R | Promise<R> => {
    if (declined?.item !== item) return map(item);
    const { value } = declined;
    declined = undefined;
    return value;
  };
  const close = async () => {
    await iterator.return?.();
  };
  const closeAndFail = async (error: unknown): Promise<never> => {
    await close();
    return fail(error);
  };
  const mapped: AsyncGenerator<R, void, void> = {
    next() {
      return iterator.next().then((step): IteratorResult<R, void> | Promise<IteratorResult<R, void>> => {
        if (step.done) return { value: undefined, done: true };
        let value: R | Promise<R>;
        try {
          value = mapOnce(step.value);
        } catch (error) {
          return closeAndFail(error);
        }
        return isPromiseLike(value) ? value.then((result) => ({ value: result, done: false }), closeAndFail) : { value, done: false };
      }, fail);
    },
    async return() {
      await close();
      return { value: undefined, done: true };
    },
    async throw(error: unknown) {
      await close();
      throw error;
    },
    [Symbol.asyncIterator]() {
      return mapped;
    },
  };
  if (!pushesThrough<T>(iterator)) return mapped;
  return Object.assign(mapped, {
    [pushThrough]: (sink: Sink<R>) =>
      iterator[pushThrough]((item) => {
        let value: R | Promise<R>;
        try {
          value = map(item);
        } catch {
          return false; // next() maps it again, and fails the stream with the error
        }
        if (!isPromiseLike(value) && sink(value)) return true;
        declined = { item, value };
        return false;
      }),
  });
}

function isPromiseLike<R>(value: R | Promise<R>): value is Promise<R> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}
