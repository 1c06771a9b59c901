/**
 * Live updates applied once per animation frame: a track printing 1,000 lines a second then
 * costs one render per frame, not one per line, and a hidden tab (no frames) keeps
 * collecting until it is shown again.
 */
import { useEffect, useRef } from 'preact/hooks';

export interface FrameBatcher<Item> {
  push(item: Item): void;
  /** Drops what is queued and stops (the view is left). */
  cancel(): void;
}

export function frameBatcher<Item>(apply: (batch: Item[]) => void): FrameBatcher<Item> {
  let queued: Item[] = [];
  let frame: number | undefined;
  const flush = () => {
    frame = undefined;
    const batch = queued;
    queued = [];
    if (batch.length > 0) apply(batch);
  };
  return {
    push(item) {
      queued.push(item);
      frame ??= requestAnimationFrame(flush);
    },
    cancel() {
      if (frame !== undefined) cancelAnimationFrame(frame);
      frame = undefined;
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
