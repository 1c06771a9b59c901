/**
 * A measuring probe preloaded (`--import`) into the fan-out benchmark's server process only
 * (bench/fan-out.ts starts that process); nothing in src/ loads it, and the launcher is forked
 * with its own execArgv, so it does not inherit it. It observes without changing server code:
 *
 *  - the instant each committed event is published on the bus (src/store/transaction.ts
 *    publishes right after the commit): EventTarget.prototype.dispatchEvent (the bus's
 *    in-memory carrier) and EventEmitter.prototype.emit are wrapped to note
 *    `process.hrtime` (CLOCK_MONOTONIC, the same clock in every process of the machine) when
 *    an event named `pipeline:event:<pipelineId>` is emitted, before its listeners run;
 *  - the bus's emitter (captured when something listens to `pipeline:event:*`), so the bench
 *    can ask how many subscribers listen to a pipeline: a server-side count;
 *  - the event loop's delay (perf_hooks.monitorEventLoopDelay, reset with resetPeak);
 *  - the writes to TCP sockets (net.Socket.prototype.write is wrapped to count them);
 *  - process.memoryUsage(), after a full GC when asked (the process runs with --expose-gc),
 *    and the highest heapUsed seen by a 100 ms sampler since the last reset.
 *
 * It answers requests over the IPC channel its parent opened ({@link ProbeRequest}), and stops
 * the server (SIGTERM) when that channel closes.
 */
import { EventEmitter } from 'node:events';
import { Socket } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';

const TOPIC = 'pipeline:event:';

export type ProbeRequest =
  | { probe: 'stats'; id: number; gc?: boolean; pipelineId?: number; resetPeak?: boolean }
  | { probe: 'published'; id: number };

export interface ProbeStats {
  memory: NodeJS.MemoryUsage;
  /** Highest heapUsed sampled (every 100 ms) since the last resetPeak. */
  peakHeapUsed: number;
  /** Listeners on `pipeline:event:<pipelineId>`, or null if the bus was not seen (yet). */
  listeners: number | null;
  /** Writes to TCP sockets so far (each one a system call, or queued behind one). */
  socketWrites: number;
  /** The event loop's delay since the last resetPeak, in ms. */
  loopDelay: { p50: number; p99: number; max: number };
}

export interface ProbePublished {
  /** [eventId, hrtime in ms, eventId, hrtime in ms, ...] in publish order. */
  published: number[];
}

const hrMs = () => Number(process.hrtime.bigint()) / 1e6;
const published: number[] = [];
let bus: WeakRef<EventEmitter> | undefined;

const originalEmit = EventEmitter.prototype.emit;
// `arguments`, not a rest parameter: this runs for every emit of the process (sockets too).
EventEmitter.prototype.emit = function emit(this: EventEmitter, name: string | symbol, payload?: unknown): boolean {
  if (typeof name === 'string' && name.startsWith(TOPIC)) {
    const at = hrMs();
    const id = (payload as { id?: unknown } | undefined)?.id;
    if (typeof id === 'number') published.push(id, at);
  }
  // eslint-disable-next-line prefer-rest-params
  return Reflect.apply(originalEmit, this, arguments) as boolean;
};

// The bus dispatches on an EventTarget (src/pubsub.ts), its channels prefixed per deployment.
const originalDispatch = EventTarget.prototype.dispatchEvent;
EventTarget.prototype.dispatchEvent = function dispatchEvent(this: EventTarget, event: Event): boolean {
  if (event.type.includes(TOPIC)) {
    const id = ((event as CustomEvent).detail as { id?: unknown } | undefined)?.id;
    if (typeof id === 'number') published.push(id, hrMs());
  }
  return originalDispatch.call(this, event);
};

const originalOn = EventEmitter.prototype.on;
EventEmitter.prototype.on = function on(this: EventEmitter, name: string | symbol, listener: (...args: any[]) => void) {
  if (typeof name === 'string' && name.startsWith(TOPIC) && bus?.deref() !== this) bus = new WeakRef(this);
  return originalOn.call(this, name, listener);
};

let socketWrites = 0;
const originalWrite = Socket.prototype.write;
Socket.prototype.write = function write(this: Socket) {
  socketWrites++;
  // eslint-disable-next-line prefer-rest-params
  return Reflect.apply(originalWrite, this, arguments) as boolean;
} as typeof Socket.prototype.write;

const loopDelay = monitorEventLoopDelay({ resolution: 10 });
loopDelay.enable();

let peakHeapUsed = 0;
const sampler = setInterval(() => {
  peakHeapUsed = Math.max(peakHeapUsed, process.memoryUsage().heapUsed);
}, 100);
sampler.unref();

// If the bench dies without stopping this server, the channel closes: stop as on SIGTERM
// rather than live on as an orphan.
process.on('disconnect', () => process.kill(process.pid, 'SIGTERM'));

process.on('message', (message: unknown) => {
  const request = message as Partial<ProbeRequest> | null;
  if (!request || typeof request !== 'object' || typeof request.id !== 'number') return;
  if (request.probe === 'stats') {
    const { gc, pipelineId, resetPeak } = request as Extract<ProbeRequest, { probe: 'stats' }>;
    if (gc) (globalThis as { gc?: () => void }).gc?.();
    const memory = process.memoryUsage();
    const emitter = bus?.deref();
    const body: ProbeStats = {
      memory,
      peakHeapUsed: Math.max(peakHeapUsed, memory.heapUsed),
      listeners: emitter && pipelineId !== undefined ? emitter.listenerCount(`${TOPIC}${pipelineId}`) : null,
      socketWrites,
      loopDelay: { p50: loopDelay.percentile(50) / 1e6, p99: loopDelay.percentile(99) / 1e6, max: loopDelay.max / 1e6 },
    };
    if (resetPeak) {
      peakHeapUsed = memory.heapUsed;
      loopDelay.reset();
    }
    process.send?.({ probeReply: request.id, body });
  } else if (request.probe === 'published') {
    const body: ProbePublished = { published };
    process.send?.({ probeReply: request.id, body });
  }
});
