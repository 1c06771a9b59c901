/**
 * Configuration, parsed once from the environment. Nothing else reads process.env:
 * the typed {@link Config} is passed down from the composition root.
 */
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { z } from 'zod';

export interface Config {
  port: number;
  host: string;
  databaseUrl: string;
  workers: number;
  outputLimitBytes: number;
  workDir: string;
  logLevel: 'debug' | 'info' | 'warn' | 'error' | 'silent';
}

export const DEFAULT_DATABASE_URL = `file:${path.resolve('data/dagpipe.db')}`;

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
  PORT: integer('PORT', 4000, 0, 65535),
  HOST: z.string().trim().min(1, 'HOST must not be empty').default('127.0.0.1'),
  DATABASE_URL: z
    .string()
    .default(DEFAULT_DATABASE_URL)
    .refine((url) => url.startsWith('file:'), {
      message:
        'DATABASE_URL must be a SQLite URL such as file:./data/dagpipe.db (PostgreSQL support is planned)',
    }),
  WORKERS: integer('WORKERS', availableParallelism(), 1, 1024),
  OUTPUT_LIMIT_BYTES: integer('OUTPUT_LIMIT_BYTES', 1024 * 1024, 1024, 1024 * 1024 * 1024),
  WORK_DIR: z.string().min(1).default(path.resolve('data/work')),
  LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info'),
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
    port: e.PORT,
    host: e.HOST,
    databaseUrl: e.DATABASE_URL,
    workers: e.WORKERS,
    outputLimitBytes: e.OUTPUT_LIMIT_BYTES,
    workDir: path.resolve(e.WORK_DIR),
    logLevel: e.LOG_LEVEL,
  };
}
