/**
 * Wall-clock milliseconds with sub-millisecond precision, comparable across the service
 * and its launcher (both measure from the same epoch). Its own module so that the service
 * does not load execa (run-script.ts) just to read the clock.
 */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}
