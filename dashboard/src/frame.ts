/**
 * Live updates applied once per animation frame: a track printing 1,000 lines a second then
 * costs one render per frame, not one per line. A hidden tab gets no frames, so there the
 * queue is applied once a second instead: it would otherwise grow without bound until the
 * tab is shown again.
 */
import { useEffect, useRef } from 'preact/hooks';

export interface FrameBatcher<Item> {
  push(item: Item): void;
  /** Drops what is queued and stops (the view is left). */
  cancel(): void;
}

const HIDDEN_FLUSH_MS = 1_000;

export function frameBatcher<Item>(apply: (batch: Item[]) => void): FrameBatcher<Item> {
  let queued: Item[] = [];
  let frame: number | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const stop = () => {
    if (frame !== undefined) cancelAnimationFrame(frame);
    clearTimeout(timer);
    frame = undefined;
    timer = undefined;
  };
  const flush = () => {
    stop();
    const batch = queued;
    queued = [];
    if (batch.length > 0) apply(batch);
  };
  return {
    push(item) {
      queued.push(item);
      // Whichever comes first: the next frame, or (in a hidden tab, which has none) the timer.
      frame ??= requestAnimationFrame(flush);
      if (document.hidden) timer ??= setTimeout(flush, HIDDEN_FLUSH_MS);
    },
    cancel() {
      stop();
      queued = [];
    },
  };
}

/** A batcher for the component's lifetime; `apply` may change between renders. */
export function useFrameBatcher<Item>(apply: (batch: Item[]) => void): FrameBatcher<Item> {
  const latest = useRef(apply);
  latest.current = apply;
  const batcher = useRef<FrameBatcher<Item> | undefined>(undefined);
  batcher.current ??= frameBatcher((batch) => latest.current(batch));
  useEffect(() => () => batcher.current?.cancel(), []);
  return batcher.current;
}
