/**
 * The fan-out fast path: the stages of a subscription (its event stream, the execution of
 * each event, the socket it is sent on) hand a live item on synchronously while the
 * stream is caught up, instead of through a promise per stage.
 *
 * Every stage is an async iterator, as graphql-js and graphql-ws expect, and every item
 * may take that way. But a thousand subscribers of one pipeline each get every event, and
 * the async way costs, per subscriber and event, a promise and a turn of the microtask
 * queue at each stage, a generator resumed and the garbage of all that: it was most of
 * the API process's CPU in the fan-out bench (10 us per delivery). Pushed through, a
 * delivery is a few checks and an append to the socket's outgoing bytes.
 *
 * A stage that offers {@link pushThrough} takes a sink from its consumer. While the
 * consumer waits on next() (so it has handled every earlier item), the stage may give it
 * the next item by calling the sink instead of resolving next(). The sink returns false
 * when it cannot take the item at once (its execution has not settled, the result has
 * errors that graphql-ws formats, the socket is over its high-water mark); the stage then
 * delivers that item, and the ones after it, through next() as if it had no sink, which
 * keeps their order. The sink is called only from the stage's own synchronous code (a bus
 * listener), never while the consumer handles an item.
 */
export const pushThrough = Symbol('pushThrough');

/** Takes an item now (true) or declines it (false: it goes through next()). */
export type Sink<T> = (item: T) => boolean;

export interface PushesThrough<T> {
  [pushThrough](sink: Sink<T>): void;
}

export function pushesThrough<T>(iterator: object): iterator is PushesThrough<T> {
  return pushThrough in iterator;
}
