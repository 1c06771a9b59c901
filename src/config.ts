/**
 * Configuration, parsed once from the environment. Nothing else reads process.env:
 * the typed {@link Config} is passed down from the composition root.
 */
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { parseAllowList, type AllowList } from './engine/webhook-address.ts';
import { DEFAULT_RETRY_SCHEDULE } from './engine/webhook-attempts.ts';

export type Role = 'all' | 'api' | 'worker';

export interface Config {
  /** What this process does (SPEC rule 11): everything, the API only, or execution only. */
  role: Role;
  port: number;
  host: string;
  databaseUrl: string;
  /** From the DATABASE_URL scheme. */
  databaseProvider: DatabaseProvider;
  /** Live delivery across processes; without it, events reach this process's subscribers only. */
  redisUrl: string | undefined;
  /** PostgreSQL connections per process (Prisma's pool). */
  databasePoolSize: number;
  /** How often a worker heartbeats, and sweeps for dead workers. */
  heartbeatMs: number;
  /**
   * A worker whose heartbeat is older than this is dead; its running tracks are settled by
   * the next sweep of a live one, so at most leaseMs + heartbeatMs after its last heartbeat.
   */
  leaseMs: number;
  /** Fallback polling for ready tracks, when no wake-up hint arrived. */
  pollMs: number;
  /** Scripts one worker process runs at once. */
  workers: number;
  outputLimitBytes: number;
  workDir: string;
  logLevel: 'debug' | 'info' | 'warn' | 'error' | 'silent';
  /** Off only explicitly, and only on a loopback HOST. */
  auth: boolean;
  introspection: boolean;
  limits: Limits;
  /** Extra variables of the service's environment that scripts may see (names). */
  scriptEnv: string[];
  /** The user scripts run as when the service runs as root (a name or uid). */
  scriptUser: string;
  retention: Retention;
  webhooks: WebhookConfig;
}

/**
 * RETENTION_PACE's default: while scripts run, the job works at most one part in this of the
 * time (see src/retention.ts). Its share is about what it may take from a run of short steps whose
 * process is the bottleneck: a tenth measured a slowdown of 0.9 to 1.5 times, a twentieth a
 * median of 1.08 on PostgreSQL (single runs up to 1.19, the target being under 1.1), so it
 * keeps to a fortieth. Deleting 10,000 pipelines then takes about twenty minutes while
 * scripts run all along, and half a minute while none does.
 */
export const DEFAULT_RETENTION_PACE = 40;

/** Deleting ended pipelines (SPEC rule 17; see src/retention.ts). */
export interface Retention {
  /** Ended pipelines older than this many days are deleted; 0 keeps everything. */
  days: number;
  /** How often each process that runs scripts looks for them. */
  intervalMs: number;
  /** Pipelines deleted per transaction. */
  batchSize: number;
  /** While scripts run, the job works at most one part in `pace` of the time (1: no rests). */
  pace: number;
}

/** Webhook deliveries (SPEC rule 20; README, Webhooks). */
export interface WebhookConfig {
  /** WEBHOOK_ALLOWED_HOSTS: non-public hosts and addresses webhooks may reach all the same. */
  allowList: AllowList;
  /** One attempt, from resolving the host to the answer's first KiB. */
  timeoutMs: number;
  /** The wait after a first failed attempt; it doubles with each further one (at most an hour). */
  retryBaseMs: number;
  /** Attempts stop this long after the event: the delivery is then FAILED. */
  retryWindowMs: number;
}

/** What one client may ask of the service (see README, Limits). */
export interface Limits {
  bodyBytes: number;
  depth: number;
  cost: number;
  aliases: number;
  tokens: number;
  subscriptionsPerConnection: number;
  mutationsPerMinute: number;
}

/** Variables that hold the service's own secrets: never passed to a script. */
const SERVICE_SECRETS = new Set(['DATABASE_URL', 'REDIS_URL']);

const LOOPBACK_HOSTS = new Set(['127.0.0.1', '::1', 'localhost', '[::1]']);

export function isLoopback(host: string): boolean {
  return LOOPBACK_HOSTS.has(host) || /^127\.\d+\.\d+\.\d+$/.test(host);
}

export const DEFAULT_DATABASE_URL = `file:${path.resolve('data/dagpipe.db')}`;

export type DatabaseProvider = 'sqlite' | 'postgresql';

/** The database a DATABASE_URL names, by its scheme; undefined for anything else. */
export function databaseProviderOf(url: string): DatabaseProvider | undefined {
  if (url.startsWith('file:')) return 'sqlite';
  if (/^postgres(ql)?:\/\//.test(url)) return 'postgresql';
  return undefined;
}

/** Default PORT per role: an API and a worker on one machine do not collide. */
const DEFAULT_PORTS: Record<Role, number> = { all: 4000, api: 4000, worker: 4001 };

const integer = (name: string, fallback: number, min: number, max: number) =>
  z
    .string()
    .optional()
    .transform((value, ctx) => {
      if (value === undefined || value.trim() === '') return fallback;
      const parsed = /^\s*\d+\s*$/.test(value) ? Number(value) : Number.NaN;
      if (!Number.isInteger(parsed) || parsed < min || parsed > max) {
        ctx.addIssue({
          code: 'custom',
          message: `${name} must be a whole number from ${min} to ${max}, got "${value}"`,
        });
        return z.NEVER;
      }
      return parsed;
    });

const schema = z.object({
  ROLE: z.enum(['all', 'api', 'worker'], { message: 'ROLE must be all, api or worker' }).default('all'),
  PORT: integer('PORT', -1, 0, 65535),
  HOST: z.string().trim().min(1, 'HOST must not be empty').default('127.0.0.1'),
  DATABASE_URL: z
    .string()
    .default(DEFAULT_DATABASE_URL)
    .refine((url) => databaseProviderOf(url) !== undefined, {
      message:
        'DATABASE_URL must be a SQLite URL such as file:./data/dagpipe.db or a PostgreSQL URL such as postgresql://user@host:5432/dagpipe',
    }),
  REDIS_URL: z
    .string()
    .trim()
    .optional()
    .transform((url) => (url === '' ? undefined : url))
    .refine((url) => url === undefined || /^rediss?:\/\//.test(url), { message: 'REDIS_URL must be a Redis URL such as redis://127.0.0.1:6379' }),
  DATABASE_POOL_SIZE: integer('DATABASE_POOL_SIZE', 10, 1, 1000),
  HEARTBEAT_INTERVAL_MS: integer('HEARTBEAT_INTERVAL_MS', 5000, 50, 3_600_000),
  LEASE_MS: integer('LEASE_MS', -1, 150, 86_400_000),
  POLL_INTERVAL_MS: integer('POLL_INTERVAL_MS', 1000, 10, 3_600_000),
  WORKERS: integer('WORKERS', availableParallelism(), 1, 1024),
  OUTPUT_LIMIT_BYTES: integer('OUTPUT_LIMIT_BYTES', 1024 * 1024, 1024, 1024 * 1024 * 1024),
  WORK_DIR: z.string().min(1).default(path.resolve('data/work')),
  LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info'),
  AUTH: z.enum(['on', 'off'], { message: 'AUTH must be on or off' }).default('on'),
  INTROSPECTION: z.enum(['on', 'off'], { message: 'INTROSPECTION must be on or off' }).default('on'),
  MAX_BODY_BYTES: integer('MAX_BODY_BYTES', 8 * 1024 * 1024, 1024, 256 * 1024 * 1024),
  MAX_QUERY_DEPTH: integer('MAX_QUERY_DEPTH', 15, 2, 1000),
  // graphql-armor's cost multiplies by a literal `first`: events(first: 10000) { 10 fields } is ~170,000.
  MAX_QUERY_COST: integer('MAX_QUERY_COST', 1_000_000, 10, 1_000_000_000),
  MAX_ALIASES: integer('MAX_ALIASES', 50, 1, 1_000_000),
  MAX_TOKENS: integer('MAX_TOKENS', 5_000, 100, 10_000_000),
  SUBSCRIPTIONS_PER_CONNECTION: integer('SUBSCRIPTIONS_PER_CONNECTION', 100, 1, 100_000),
  MUTATIONS_PER_MINUTE: integer('MUTATIONS_PER_MINUTE', 600, 1, 100_000_000),
  SCRIPT_ENV: z
    .string()
    .default('')
    .transform((value) => value.split(',').map((name) => name.trim()).filter((name) => name !== ''))
    .superRefine((names, ctx) => {
      for (const name of names) {
        if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
          ctx.addIssue({ code: 'custom', message: `SCRIPT_ENV lists "${name}", which is not a variable name (letters, digits and _, comma-separated)` });
        } else if (SERVICE_SECRETS.has(name)) {
          ctx.addIssue({ code: 'custom', message: `SCRIPT_ENV must not list ${name}: it is the service's own secret and never reaches a script` });
        }
      }
    }),
  SCRIPT_USER: z.string().trim().min(1, 'SCRIPT_USER must not be empty').default('nobody'),
  RETENTION_DAYS: integer('RETENTION_DAYS', 90, 0, 36_500),
  RETENTION_INTERVAL_SECONDS: integer('RETENTION_INTERVAL_SECONDS', 300, 1, 86_400),
  RETENTION_BATCH_SIZE: integer('RETENTION_BATCH_SIZE', 100, 1, 10_000),
  RETENTION_PACE: integer('RETENTION_PACE', DEFAULT_RETENTION_PACE, 1, 1000),
  WEBHOOK_ALLOWED_HOSTS: z
    .string()
    .default('')
    .transform((text, ctx) => {
      const parsed = parseAllowList(text);
      if ('list' in parsed) return parsed.list;
      for (const problem of parsed.problems) ctx.addIssue({ code: 'custom', message: `WEBHOOK_ALLOWED_HOSTS: ${problem}` });
      return z.NEVER;
    }),
  WEBHOOK_TIMEOUT_MS: integer('WEBHOOK_TIMEOUT_MS', 10_000, 100, 300_000),
  WEBHOOK_RETRY_BASE_MS: integer('WEBHOOK_RETRY_BASE_MS', DEFAULT_RETRY_SCHEDULE.baseMs, 10, DEFAULT_RETRY_SCHEDULE.capMs),
  WEBHOOK_RETRY_WINDOW_MS: integer('WEBHOOK_RETRY_WINDOW_MS', DEFAULT_RETRY_SCHEDULE.windowMs, 1000, 30 * 86_400_000),
}).superRefine((env, ctx) => {
  const provider = databaseProviderOf(env.DATABASE_URL);
  if (provider === 'sqlite' && env.ROLE !== 'all') {
    ctx.addIssue({
      code: 'custom',
      message:
        `ROLE=${env.ROLE} is refused with the embedded SQLite database: SQLite serves one process, which runs everything (ROLE=all). ` +
        'To run API and worker processes apart, use PostgreSQL and Redis: DATABASE_URL=postgresql://... and REDIS_URL=redis://... (docs/deploy.md).',
    });
  }
  if (provider === 'postgresql' && env.ROLE !== 'all' && env.REDIS_URL === undefined) {
    ctx.addIssue({
      code: 'custom',
      message:
        `ROLE=${env.ROLE} needs REDIS_URL (e.g. redis://127.0.0.1:6379): API and worker processes pass live events and output through Redis. ` +
        'Without Redis, run one process with ROLE=all.',
    });
  }
  if (env.LEASE_MS !== -1 && env.LEASE_MS < 2 * env.HEARTBEAT_INTERVAL_MS) {
    ctx.addIssue({
      code: 'custom',
      message: `LEASE_MS (${env.LEASE_MS}) must be at least twice HEARTBEAT_INTERVAL_MS (${env.HEARTBEAT_INTERVAL_MS}), or a worker that is merely slow to heartbeat would be taken for dead; the default is three intervals.`,
    });
  }
  if (env.AUTH === 'off' && !isLoopback(env.HOST)) {
    ctx.addIssue({
      code: 'custom',
      message:
        `AUTH=off is refused with HOST=${env.HOST}: anyone who can reach that address could run shell commands as this service's user. ` +
        'Keep AUTH=on and create a token (npm run token -- create --role admin --name <you>), or listen on 127.0.0.1 for development without authentication.',
    });
  }
});

/** Raised with every configuration problem at once, so one restart fixes them all. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Pure: reads only the given environment object. */
export function loadConfig(env: Record<string, string | undefined>): Config {
  const result = schema.safeParse(env);
  if (!result.success) {
    throw new ConfigError(
      result.error.issues.map((issue) =>
        issue.code === 'custom' ? issue.message : `${issue.path.join('.')}: ${issue.message}`,
      ),
    );
  }
  const e = result.data;
  return {
    role: e.ROLE,
    port: e.PORT === -1 ? DEFAULT_PORTS[e.ROLE] : e.PORT,
    host: e.HOST,
    databaseUrl: e.DATABASE_URL,
    databaseProvider: databaseProviderOf(e.DATABASE_URL)!,
    redisUrl: e.REDIS_URL,
    databasePoolSize: e.DATABASE_POOL_SIZE,
    heartbeatMs: e.HEARTBEAT_INTERVAL_MS,
    leaseMs: e.LEASE_MS === -1 ? 3 * e.HEARTBEAT_INTERVAL_MS : e.LEASE_MS,
    pollMs: e.POLL_INTERVAL_MS,
    workers: e.WORKERS,
    outputLimitBytes: e.OUTPUT_LIMIT_BYTES,
    workDir: path.resolve(e.WORK_DIR),
    logLevel: e.LOG_LEVEL,
    auth: e.AUTH === 'on',
    introspection: e.INTROSPECTION === 'on',
    limits: {
      bodyBytes: e.MAX_BODY_BYTES,
      depth: e.MAX_QUERY_DEPTH,
      cost: e.MAX_QUERY_COST,
      aliases: e.MAX_ALIASES,
      tokens: e.MAX_TOKENS,
      subscriptionsPerConnection: e.SUBSCRIPTIONS_PER_CONNECTION,
      mutationsPerMinute: e.MUTATIONS_PER_MINUTE,
    },
    scriptEnv: e.SCRIPT_ENV,
    scriptUser: e.SCRIPT_USER,
    retention: { days: e.RETENTION_DAYS, intervalMs: e.RETENTION_INTERVAL_SECONDS * 1000, batchSize: e.RETENTION_BATCH_SIZE, pace: e.RETENTION_PACE },
    webhooks: {
      allowList: e.WEBHOOK_ALLOWED_HOSTS,
      timeoutMs: e.WEBHOOK_TIMEOUT_MS,
      retryBaseMs: e.WEBHOOK_RETRY_BASE_MS,
      retryWindowMs: e.WEBHOOK_RETRY_WINDOW_MS,
    },
  };
}
