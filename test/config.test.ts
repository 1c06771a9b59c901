/** Unit tests of loadConfig: defaults, parsing, and one ConfigError listing every problem. */
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ConfigError, DEFAULT_DATABASE_URL, loadConfig } from '../src/config.ts';
import { EMPTY_ALLOW_LIST } from '../src/engine/webhook-address.ts';

function configError(env: Record<string, string | undefined>): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error(`expected loadConfig(${JSON.stringify(env)}) to throw`);
}

describe('loadConfig defaults', () => {
  const config = () => loadConfig({});

  it('listens on 127.0.0.1:4000', () => {
    expect(config().port).toBe(4000);
    expect(config().host).toBe('127.0.0.1');
  });

  it('runs as many tracks at once as there are CPUs', () => {
    expect(config().workers).toBe(availableParallelism());
    expect(config().workers).toBeGreaterThanOrEqual(1);
  });

  it('caps stored output at 1 MiB', () => {
    expect(config().outputLimitBytes).toBe(1_048_576);
  });

  it('keeps the SQLite database under ./data/', () => {
    const url = config().databaseUrl;
    expect(url).toBe(DEFAULT_DATABASE_URL);
    expect(url.startsWith('file:')).toBe(true);
    const file = url.slice('file:'.length);
    expect(path.isAbsolute(file)).toBe(true);
    expect(path.dirname(file)).toBe(path.resolve('data'));
    expect(path.basename(file)).toMatch(/\.db$/);
  });

  it('works under ./data/work at log level info', () => {
    expect(config().workDir).toBe(path.resolve('data', 'work'));
    expect(config().logLevel).toBe('info');
  });

  it.each(['PORT', 'WORKERS', 'OUTPUT_LIMIT_BYTES'])('treats an empty or blank %s as unset', (name) => {
    const defaults = loadConfig({});
    expect(loadConfig({ [name]: '' })).toEqual(defaults);
    expect(loadConfig({ [name]: '  ' })).toEqual(defaults);
  });
});

describe('loadConfig is pure', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  it('reads only the given object, never process.env', () => {
    vi.stubEnv('PORT', '1234');
    vi.stubEnv('HOST', '0.0.0.0');
    vi.stubEnv('LOG_LEVEL', 'debug');
    const config = loadConfig({});
    expect(config.port).toBe(4000);
    expect(config.host).toBe('127.0.0.1');
    expect(config.logLevel).toBe('info');
  });

  it('ignores unrelated variables', () => {
    expect(loadConfig({ NODE_ENV: 'production', PATH: '/usr/bin', FOO: 'bar' })).toEqual(loadConfig({}));
  });
});

describe('loadConfig parsing', () => {
  it.each<{ env: Record<string, string>; key: keyof ReturnType<typeof loadConfig>; expected: unknown }>([
    { env: { PORT: '8080' }, key: 'port', expected: 8080 },
    { env: { PORT: '0' }, key: 'port', expected: 0 },
    { env: { PORT: '65535' }, key: 'port', expected: 65535 },
    { env: { PORT: ' 8080 ' }, key: 'port', expected: 8080 },
    { env: { HOST: '0.0.0.0' }, key: 'host', expected: '0.0.0.0' },
    { env: { HOST: ' ::1 ' }, key: 'host', expected: '::1' },
    { env: { DATABASE_URL: 'file:/var/lib/dagpipe/x.db' }, key: 'databaseUrl', expected: 'file:/var/lib/dagpipe/x.db' },
    { env: { DATABASE_URL: 'file:./data/dagpipe.db' }, key: 'databaseUrl', expected: 'file:./data/dagpipe.db' },
    { env: { WORKERS: '1' }, key: 'workers', expected: 1 },
    { env: { WORKERS: '16' }, key: 'workers', expected: 16 },
    { env: { WORKERS: '1024' }, key: 'workers', expected: 1024 },
    { env: { OUTPUT_LIMIT_BYTES: '1024' }, key: 'outputLimitBytes', expected: 1024 },
    { env: { OUTPUT_LIMIT_BYTES: '2097152' }, key: 'outputLimitBytes', expected: 2_097_152 },
    { env: { OUTPUT_LIMIT_BYTES: '1073741824' }, key: 'outputLimitBytes', expected: 1024 ** 3 },
    { env: { WORK_DIR: 'tmp/work' }, key: 'workDir', expected: path.resolve('tmp/work') },
    { env: { WORK_DIR: '/srv/dagpipe' }, key: 'workDir', expected: '/srv/dagpipe' },
    { env: { LOG_LEVEL: 'debug' }, key: 'logLevel', expected: 'debug' },
    { env: { LOG_LEVEL: 'warn' }, key: 'logLevel', expected: 'warn' },
    { env: { LOG_LEVEL: 'error' }, key: 'logLevel', expected: 'error' },
    { env: { LOG_LEVEL: 'silent' }, key: 'logLevel', expected: 'silent' },
  ])('$env -> $key = $expected', ({ env, key, expected }) => {
    expect(loadConfig(env)[key]).toStrictEqual(expected);
  });

  it('parses a full environment', () => {
    expect(
      loadConfig({
        PORT: '9000',
        HOST: '0.0.0.0',
        DATABASE_URL: 'file:/tmp/d.db',
        WORKERS: '3',
        OUTPUT_LIMIT_BYTES: '4096',
        WORK_DIR: '/tmp/work',
        LOG_LEVEL: 'warn',
        AUTH: 'on',
        INTROSPECTION: 'off',
        MAX_BODY_BYTES: '2048',
        MAX_QUERY_DEPTH: '8',
        MAX_QUERY_COST: '500',
        MAX_ALIASES: '5',
        MAX_TOKENS: '300',
        SUBSCRIPTIONS_PER_CONNECTION: '3',
        MUTATIONS_PER_MINUTE: '10',
      }),
    ).toStrictEqual({
      role: 'all',
      port: 9000,
      host: '0.0.0.0',
      databaseUrl: 'file:/tmp/d.db',
      databaseProvider: 'sqlite',
      redisUrl: undefined,
      databasePoolSize: 10,
      heartbeatMs: 5000,
      leaseMs: 15000,
      pollMs: 1000,
      workers: 3,
      outputLimitBytes: 4096,
      workDir: '/tmp/work',
      logLevel: 'warn',
      auth: true,
      introspection: false,
      limits: { bodyBytes: 2048, depth: 8, cost: 500, aliases: 5, tokens: 300, subscriptionsPerConnection: 3, mutationsPerMinute: 10 },
      scriptEnv: [],
      scriptUser: 'nobody',
      retention: { days: 90, intervalMs: 300_000, batchSize: 100, pace: 40 },
      webhooks: { allowList: EMPTY_ALLOW_LIST, timeoutMs: 10_000, retryBaseMs: 10_000, retryWindowMs: 86_400_000 },
    });
  });
});

describe('retention (SPEC rule 17)', () => {
  it('keeps ended pipelines 90 days by default, looks every 5 minutes, 100 pipelines per transaction, a fortieth of the time while scripts run', () => {
    expect(loadConfig({}).retention).toEqual({ days: 90, intervalMs: 300_000, batchSize: 100, pace: 40 });
  });

  it('RETENTION_DAYS=0 keeps everything; the interval is given in seconds', () => {
    expect(loadConfig({ RETENTION_DAYS: '0', RETENTION_INTERVAL_SECONDS: '1', RETENTION_BATCH_SIZE: '5', RETENTION_PACE: '1' }).retention).toEqual({
      days: 0,
      intervalMs: 1000,
      batchSize: 5,
      pace: 1,
    });
  });

  it('refuses what is not a whole number in range, every problem at once', () => {
    expect(configError({ RETENTION_DAYS: '-1', RETENTION_INTERVAL_SECONDS: '0', RETENTION_BATCH_SIZE: '1.5', RETENTION_PACE: '0' }).problems).toEqual([
      'RETENTION_DAYS must be a whole number from 0 to 36500, got "-1"',
      'RETENTION_INTERVAL_SECONDS must be a whole number from 1 to 86400, got "0"',
      'RETENTION_BATCH_SIZE must be a whole number from 1 to 10000, got "1.5"',
      'RETENTION_PACE must be a whole number from 1 to 1000, got "0"',
    ]);
  });
});

describe('processes and roles (SPEC rule 11)', () => {
  it('PostgreSQL by the URL scheme, postgres:// or postgresql://', () => {
    expect(loadConfig({ DATABASE_URL: 'postgresql://u@db:5432/dagpipe' }).databaseProvider).toBe('postgresql');
    expect(loadConfig({ DATABASE_URL: 'postgres://u@db/dagpipe' }).databaseProvider).toBe('postgresql');
    expect(loadConfig({}).databaseProvider).toBe('sqlite');
  });

  it('ROLE=api and ROLE=worker on PostgreSQL with Redis; a worker listens on 4001 by default, beside an API on 4000', () => {
    const env = { DATABASE_URL: 'postgresql://db/dagpipe', REDIS_URL: 'redis://127.0.0.1:6379' };
    expect(loadConfig({ ...env, ROLE: 'api' })).toMatchObject({ role: 'api', port: 4000, redisUrl: 'redis://127.0.0.1:6379' });
    expect(loadConfig({ ...env, ROLE: 'worker' })).toMatchObject({ role: 'worker', port: 4001 });
    expect(loadConfig({ ...env, ROLE: 'worker', PORT: '9100' }).port).toBe(9100);
  });

  it('refuses another role than all on SQLite, saying why and what to use instead', () => {
    for (const role of ['api', 'worker']) {
      const error = configError({ ROLE: role });
      expect(error.problems).toHaveLength(1);
      expect(error.problems[0]).toContain(`ROLE=${role}`);
      expect(error.problems[0]).toContain('SQLite serves one process');
      expect(error.problems[0]).toContain('postgresql://');
    }
  });

  it('refuses api and worker roles on PostgreSQL without REDIS_URL', () => {
    const error = configError({ ROLE: 'worker', DATABASE_URL: 'postgresql://db/dagpipe' });
    expect(error.problems).toEqual([expect.stringContaining('ROLE=worker needs REDIS_URL')]);
    expect(loadConfig({ DATABASE_URL: 'postgresql://db/dagpipe' }).redisUrl).toBeUndefined();
  });

  it('the lease is three heartbeats by default and at least two when set', () => {
    expect(loadConfig({ HEARTBEAT_INTERVAL_MS: '1000' }).leaseMs).toBe(3000);
    expect(loadConfig({ HEARTBEAT_INTERVAL_MS: '1000', LEASE_MS: '2000' }).leaseMs).toBe(2000);
    expect(configError({ HEARTBEAT_INTERVAL_MS: '1000', LEASE_MS: '1500' }).problems).toEqual([expect.stringContaining('LEASE_MS (1500) must be at least twice')]);
  });

  it('refuses a ROLE or REDIS_URL that is not one, naming it', () => {
    expect(configError({ ROLE: 'both' }).problems).toEqual([expect.stringContaining('ROLE must be all, api or worker')]);
    expect(configError({ REDIS_URL: 'localhost:6379' }).problems).toEqual([expect.stringContaining('REDIS_URL must be a Redis URL')]);
  });
});

describe('loadConfig errors', () => {
  it.each([
    { name: 'PORT', value: 'abc' },
    { name: 'PORT', value: '-1' },
    { name: 'PORT', value: '65536' },
    { name: 'PORT', value: '80.5' },
    { name: 'PORT', value: '80abc' },
    { name: 'WORKERS', value: '0' },
    { name: 'WORKERS', value: '1025' },
    { name: 'WORKERS', value: 'many' },
    { name: 'OUTPUT_LIMIT_BYTES', value: '1023' },
    { name: 'OUTPUT_LIMIT_BYTES', value: '1073741825' },
    { name: 'OUTPUT_LIMIT_BYTES', value: '1MiB' },
    { name: 'HOST', value: '' },
    { name: 'HOST', value: '   ' },
    { name: 'DATABASE_URL', value: 'mysql://localhost/dagpipe' },
    { name: 'DATABASE_URL', value: '' },
    { name: 'DATABASE_URL', value: './data/dagpipe.db' },
    { name: 'WORK_DIR', value: '' },
    { name: 'LOG_LEVEL', value: 'verbose' },
    { name: 'LOG_LEVEL', value: 'INFO' },
  ])('refuses $name=$value, naming the variable', ({ name, value }) => {
    const error = configError({ [name]: value });
    expect(error.problems).toHaveLength(1);
    expect(error.problems[0]).toContain(name);
    expect(error.message).toContain(name);
  });

  it('reports every bad variable at once in one ConfigError', () => {
    const error = configError({
      PORT: 'abc',
      HOST: ' ',
      DATABASE_URL: 'mysql://localhost/dagpipe',
      WORKERS: '0',
      OUTPUT_LIMIT_BYTES: '5',
      WORK_DIR: '',
      LOG_LEVEL: 'loud',
    });
    const names = ['PORT', 'HOST', 'DATABASE_URL', 'WORKERS', 'OUTPUT_LIMIT_BYTES', 'WORK_DIR', 'LOG_LEVEL'];
    expect(error.problems).toHaveLength(names.length);
    for (const name of names) {
      expect(
        error.problems.some((problem) => problem.startsWith(name) || problem.includes(`${name} `) || problem.includes(`${name}:`)),
        `a problem names ${name}: ${JSON.stringify(error.problems)}`,
      ).toBe(true);
      expect(error.message).toContain(name);
    }
    expect(error.name).toBe('ConfigError');
  });

  it('reports the values at fault for numbers', () => {
    const error = configError({ PORT: 'abc', WORKERS: '0' });
    expect(error.problems).toHaveLength(2);
    expect(error.message).toContain('"abc"');
    expect(error.message).toContain('"0"');
  });

  it('reports only the bad variables among good ones', () => {
    const error = configError({ PORT: '8080', WORKERS: '-2', LOG_LEVEL: 'debug', OUTPUT_LIMIT_BYTES: 'lots' });
    expect(error.problems).toHaveLength(2);
    expect(error.problems.join('\n')).toMatch(/WORKERS/);
    expect(error.problems.join('\n')).toMatch(/OUTPUT_LIMIT_BYTES/);
    expect(error.problems.join('\n')).not.toMatch(/PORT|LOG_LEVEL/);
  });
});

describe('strict numbers', () => {
  it.each(['0x1F90', '1e3', '80.0'])('refuses PORT=%s', (port) => {
    expect(() => loadConfig({ PORT: port })).toThrow(ConfigError);
  });
});

describe('safe defaults', () => {
  it('authentication is on, introspection on, and the limits have production defaults', () => {
    const config = loadConfig({});
    expect(config.auth).toBe(true);
    expect(config.introspection).toBe(true);
    expect(config.limits).toEqual({
      bodyBytes: 8 * 1024 * 1024,
      depth: 15,
      cost: 1_000_000,
      aliases: 50,
      tokens: 5_000,
      subscriptionsPerConnection: 100,
      mutationsPerMinute: 600,
    });
  });

  it.each(['127.0.0.1', '::1', 'localhost', '127.0.0.2'])('AUTH=off is accepted on the loopback address %s', (host) => {
    expect(loadConfig({ AUTH: 'off', HOST: host }).auth).toBe(false);
  });

  it.each(['0.0.0.0', '::', '192.168.1.10', 'example.com'])('AUTH=off is refused on %s, saying why and what to do', (host) => {
    expect(() => loadConfig({ AUTH: 'off', HOST: host })).toThrow(ConfigError);
    expect(() => loadConfig({ AUTH: 'off', HOST: host })).toThrow(/anyone who can reach that address could run shell commands.*npm run token -- create/);
  });

  it('AUTH and INTROSPECTION take only on or off', () => {
    expect(() => loadConfig({ AUTH: 'no', INTROSPECTION: 'maybe' })).toThrow(/AUTH must be on or off[\s\S]*INTROSPECTION must be on or off/);
  });
});

describe('the scripts\' environment', () => {
  it('SCRIPT_ENV adds variable names scripts may see', () => {
    expect(loadConfig({ SCRIPT_ENV: ' AWS_REGION, http_proxy ,' }).scriptEnv).toEqual(['AWS_REGION', 'http_proxy']);
  });

  it('never lets DATABASE_URL through, and refuses what is not a name', () => {
    expect(() => loadConfig({ SCRIPT_ENV: 'DATABASE_URL,X' })).toThrow(/SCRIPT_ENV must not list DATABASE_URL: it is the service's own secret/);
    expect(() => loadConfig({ SCRIPT_ENV: 'A-B' })).toThrow(/"A-B", which is not a variable name/);
  });

  it('scripts of a service running as root run as SCRIPT_USER, nobody by default', () => {
    expect(loadConfig({}).scriptUser).toBe('nobody');
    expect(loadConfig({ SCRIPT_USER: 'runner' }).scriptUser).toBe('runner');
  });
});

describe('webhooks (SPEC rule 20)', () => {
  it('WEBHOOK_ALLOWED_HOSTS takes names, addresses and ranges; the timeout and the retries are set in milliseconds', () => {
    const { webhooks } = loadConfig({
      WEBHOOK_ALLOWED_HOSTS: 'localhost, 127.0.0.1, 10.0.0.0/8, *.internal',
      WEBHOOK_TIMEOUT_MS: '2500',
      WEBHOOK_RETRY_BASE_MS: '50',
      WEBHOOK_RETRY_WINDOW_MS: '60000',
    });
    expect([...webhooks.allowList.hosts]).toEqual(['localhost']);
    expect(webhooks.allowList.suffixes).toEqual(['.internal']);
    expect(webhooks.allowList.ranges.map((r) => r.text)).toEqual(['127.0.0.1', '10.0.0.0/8']);
    expect(webhooks).toMatchObject({ timeoutMs: 2500, retryBaseMs: 50, retryWindowMs: 60_000 });
  });

  it('names every entry of WEBHOOK_ALLOWED_HOSTS that is wrong, with the other problems', () => {
    expect(configError({ WEBHOOK_ALLOWED_HOSTS: 'ok.example, bad host, 10.0.0.0/99', WEBHOOK_TIMEOUT_MS: '5' }).problems).toEqual([
      expect.stringMatching(/^WEBHOOK_ALLOWED_HOSTS: "bad host" is neither a host name, an IP address nor a CIDR range/),
      expect.stringMatching(/^WEBHOOK_ALLOWED_HOSTS: "10\.0\.0\.0\/99" has a prefix length out of range: 0 to 32/),
      'WEBHOOK_TIMEOUT_MS must be a whole number from 100 to 300000, got "5"',
    ]);
  });
});
