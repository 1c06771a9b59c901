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
        return mapStream(stream, (event: unknown) => {
          const run = () => {
            observe(true);
            return execute({ ...args, rootValue: event });
          };
          if (typeof event !== 'object' || event === null) return run();
          let results = byEvent.get(event);
          if (!results) byEvent.set(event, (results = new Map()));
          const shared = results.get(key);
          if (shared) {
            observe(false);
            return shared;
          }
          const result = run();
          results.set(key, result);
          return result;
        });
      });
    },
  };
}

/** `source` mapped item by item; ending the result ends the source (unsubscribes at once). */
function mapStream<T, R>(source: AsyncIterable<T>, map: (item: T) => R | Promise<R>): AsyncGenerator<R, void, void> {
  const iterator = source[Symbol.asyncIterator]();
  const close = async () => {
    await iterator.return?.();
  };
  const mapped: AsyncGenerator<R, void, void> = {
    async next() {
      const step = await iterator.next();
      if (step.done) return { value: undefined, done: true };
      try {
        return { value: await map(step.value), done: false };
      } catch (error) {
        await close();
        throw error;
      }
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
  return mapped;
}
