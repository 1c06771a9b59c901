/**
 * One running attempt's output: masks secrets, gives every line its byte offset, publishes
 * it live at once (in pieces of whole lines, one bus message per piece), and stores the head the output window keeps in chunks, a few times a
 * second, so a reader can page through it (or a subscriber replay it) while it runs; the
 * tail is stored with the result.
 *
 * Live lines do not wait for the database. A reader merges the stored chunks with the
 * lines not stored yet ({@link OutputRecorder.unflushed}), which is what makes a replay
 * followed by live lines complete.
 */
import { CHUNK_BYTES, OutputWindow, type Flush, type OutputChunkData } from '../engine/output-window.ts';
import { maskSecrets, withinLines, type Secrets } from '../engine/secrets.ts';
import type { Logger } from '../logger.ts';
import { writeOutput } from '../store/output.ts';
import type { Store } from '../store/transaction.ts';

/** How long printed lines may wait before they are stored. */
const FLUSH_DELAY_MS = 250;

export class OutputRecorder {
  private readonly window: OutputWindow;
  private flushing: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private unflushedBytes = 0;
  private closed = false;
  private readonly secrets: Secrets;

  constructor(
    private readonly store: Store,
    readonly trackId: number,
    readonly attempt: number,
    limitBytes: number,
    secrets: Secrets,
    private readonly log: Logger,
  ) {
    this.window = new OutputWindow(limitBytes);
    this.secrets = withinLines(secrets);
  }

  /** Lines as the launcher sends them: `text` whole lines with their newlines, `streams` one character per line. */
  append(text: string, streams: string): void {
    for (const piece of this.window.append(maskSecrets(text, this.secrets), streams)) {
      this.unflushedBytes += piece.bytes;
      this.store.bus.publish('track:output', this.trackId, { trackId: this.trackId, attempt: this.attempt, ...piece });
    }
    if (this.closed || !this.window.headUnstored) return;
    if (this.unflushedBytes >= CHUNK_BYTES) this.flushSoon(0);
    else this.flushSoon(FLUSH_DELAY_MS);
  }

  /** Kept lines reaching past `offset` that are not stored yet. */
  unflushed(offset = 0): OutputChunkData[] {
    return this.window.unflushed(offset);
  }

  /** The kept output reaching past `offset`, stored or not, with the bytes printed and dropped so far. */
  kept(offset = 0): { pieces: OutputChunkData[]; size: number; droppedBytes: number } {
    return { pieces: this.window.kept(offset), size: this.window.size, droppedBytes: this.window.droppedBytes };
  }

  /** The whole kept output as one text (head, truncation marker, tail). */
  toString(): string {
    return this.window.toString();
  }

  /**
   * Stops flushing; returns what is left to store, to be written with the result. Those
   * lines stay readable through {@link unflushed} until then.
   */
  async close(): Promise<Flush> {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    while (this.flushing) await this.flushing;
    return this.window.takeFlush(true);
  }

  private flushSoon(delayMs: number): void {
    if (this.flushing) return; // the flush in flight schedules the next one
    if (this.timer && delayMs > 0) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.flush(), delayMs);
  }

  private flush(): void {
    this.timer = undefined;
    if (this.closed || this.flushing) return;
    const batch = this.window.takeFlush(false);
    this.unflushedBytes = 0;
    if (batch.chunks.length === 0) return;
    this.flushing = this.store.fast
      .transaction((runner) => writeOutput(runner, this.trackId, this.attempt, batch))
      .then(() => this.window.markStored(batch))
      .catch((error: unknown) => {
        // Still unflushed: the next flush, or the result, writes them.
        this.log.warn({ err: error, trackId: this.trackId, attempt: this.attempt }, 'storing output lines failed; will retry');
      })
      .finally(() => {
        this.flushing = undefined;
        if (!this.closed && this.window.headUnstored) this.flushSoon(FLUSH_DELAY_MS);
      });
  }
}
