/**
 * Fan-out without repeated work: when many clients follow the same pipeline with the same
 * operation (same document, variables and role), each committed event is executed as
 * GraphQL once and the result handed to all of them. Without this, a thousand subscribers
 * mean a thousand executions of the same event on the event loop the executor shares.
 *
 * Sharing keys on the event object itself: the bus hands the same object to every
 * subscriber, so only live events are shared; a subscriber's own replay from the database
 * executes as before. Results depend only on the event, the database and the role (the
 * scopes), never on who else is listening.
 */
import { createSourceEventStream, execute, print, type ExecutionArgs, type ExecutionResult } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { Context } from './context.ts';

type Results = Map<string, Promise<ExecutionResult> | ExecutionResult>;

/** Told of every event delivered to a subscriber, and whether it was executed for it. */
export type SharingObserver = (executed: boolean) => void;

export function useSharedEventExecution(observe: SharingObserver = () => {}): Plugin<Context> {
  const byEvent = new WeakMap<object, Results>();
  return {
    onSubscribe({ setSubscribeFn }) {
      setSubscribeFn(async (args: ExecutionArgs) => {
        const stream = await createSourceEventStream(args);
        if (!(Symbol.asyncIterator in stream)) return stream; // errors: nothing to follow
        const context = args.contextValue as Partial<Context> | undefined;
        const key = `${context?.identity?.role ?? '-'}\n${JSON.stringify(args.variableValues ?? {})}\n${args.operationName ?? ''}\n${print(args.document)}`;
        const run = (event: unknown) => {
          observe(true);
          return execute({ ...args, rootValue: event });
        };
        return mapStream(stream, (event: unknown) => {
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
        });
      });
    },
  };
}

/**
 * `source` mapped item by item; ending the result ends the source (unsubscribes at once).
 * Runs once per subscriber and event, so it takes no extra turn for a result that is
 * already there (a shared one): no async function, no await of a plain value.
 */
function mapStream<T, R>(source: AsyncIterable<T>, map: (item: T) => R | Promise<R>): AsyncGenerator<R, void, void> {
  const iterator = source[Symbol.asyncIterator]();
  const close = async () => {
    await iterator.return?.();
  };
  const fail = async (error: unknown): Promise<never> => {
    await close();
    throw error;
  };
  const mapped: AsyncGenerator<R, void, void> = {
    next() {
      return iterator.next().then((step): IteratorResult<R, void> | Promise<IteratorResult<R, void>> => {
        if (step.done) return { value: undefined, done: true };
        let value: R | Promise<R>;
        try {
          value = map(step.value);
        } catch (error) {
          return fail(error);
        }
        return isPromiseLike(value) ? value.then((result) => ({ value: result, done: false }), fail) : { value, done: false };
      });
    },
    async return() {
      await close();
      return { value: undefined, done: true };
    },
    async throw(error: unknown) {
      return fail(error);
    },
    [Symbol.asyncIterator]() {
      return mapped;
    },
  };
  return mapped;
}

function isPromiseLike<R>(value: R | Promise<R>): value is Promise<R> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}
