/** Structured JSON logs (pino). Components take a Logger; tests pass a silent one. */
import { pino, type Logger as PinoLogger } from 'pino';
import type { Config } from './config.ts';

export type Logger = PinoLogger;

export function createLogger(level: Config['logLevel']): Logger {
  return pino({ level, base: { service: 'dagpipe' } });
}
