/**
 * Wake-ups across processes on PostgreSQL: a transaction that makes a track ready, or
 * cancels one, sends a NOTIFY on WORK_CHANNEL (transaction.ts), delivered when it commits.
 * A worker LISTENs on a connection of its own: a pooled one goes back to the pool, and
 * with it the LISTEN. Notifications are hints: one sent while the connection is down is
 * lost, so after every (re)connection the listener hints once itself, and the executor's
 * poll (POLL_INTERVAL_MS) stays the fallback.
 */
import pg from 'pg';
import type { Logger } from '../logger.ts';
import { WORK_CHANNEL } from './transaction.ts';

const FIRST_RETRY_MS = 100;
const LAST_RETRY_MS = 10_000;

/** The application_name of the listening connection (pg_stat_activity shows it). */
export const LISTENER_APPLICATION_NAME = 'dagpipe-listener';

export class WorkListener {
  private client: pg.Client | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryMs = FIRST_RETRY_MS;
  private stopped = false;

  /** `onHint` gets each notification's payload ('' when the connection was (re)made). */
  constructor(
    private readonly databaseUrl: string,
    private readonly onHint: (payload: string) => void,
    private readonly log: Logger,
  ) {}

  /** Resolves once the first connection listens, or failed (it is then retried in the background). */
  start(): Promise<void> {
    this.stopped = false;
    return this.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }

  private connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.databaseUrl, application_name: LISTENER_APPLICATION_NAME, keepAlive: true });
    this.client = client;
    let lost = false;
    const drop = (error?: unknown) => {
      if (lost) return;
      lost = true;
      client.removeAllListeners('notification');
      void client.end().catch(() => undefined);
      if (this.client === client) this.client = undefined;
      if (this.stopped) return;
      this.log.warn(
        { err: error, retryInMs: this.retryMs },
        'the connection that listens for work made ready by other processes is down; reconnecting (until then, ready tracks are found by polling, POLL_INTERVAL_MS)',
      );
      this.retryTimer = setTimeout(() => void this.connect(), this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, LAST_RETRY_MS);
    };
    client.on('notification', (message) => this.onHint(message.payload ?? ''));
    client.on('error', drop);
    client.on('end', () => drop(new Error('the connection ended')));
    return client
      .connect()
      .then(() => client.query(`LISTEN "${WORK_CHANNEL}"`))
      .then(
        () => {
          if (lost) return;
          if (this.stopped) {
            void client.end().catch(() => undefined);
            return;
          }
          if (this.retryMs !== FIRST_RETRY_MS) this.log.info('listening for work made ready by other processes again');
          this.retryMs = FIRST_RETRY_MS;
          // Whatever was notified while nobody listened.
          this.onHint('');
        },
        (error: unknown) => drop(error),
      );
  }
}
