/** Webhook events, delivery bodies, signatures, the retry schedule and the input checks. Pure. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  afterFailedAttempt,
  answerOutcome,
  DEFAULT_RETRY_SCHEDULE,
  nominalDelayMs,
  responseBodyText,
  signature,
  verifySignature,
} from '../../src/engine/webhook-attempts.ts';
import { deliveryBody, requireWebhookEvents, requireWebhookSecret, requireWebhookUrl, webhookEventOf } from '../../src/engine/webhook-events.ts';
import { PipelineState, TrackState } from '../../src/engine/states.ts';
import { ValidationError } from '../../src/errors.ts';

const fieldOf = (work: () => unknown) => {
  try {
    work();
  } catch (error) {
    if (error instanceof ValidationError) return { field: error.field, message: error.message };
    throw error;
  }
  return undefined;
};

describe('which journal events are webhook events', () => {
  it('the four terminal ones under their own name, and a ready track that may lack its inputs', () => {
    expect(webhookEventOf({ type: 'pipeline:finished' })).toBe('pipeline:finished');
    expect(webhookEventOf({ type: 'pipeline:failed' })).toBe('pipeline:failed');
    expect(webhookEventOf({ type: 'pipeline:cancelled' })).toBe('pipeline:cancelled');
    expect(webhookEventOf({ type: 'track:failed', trackState: TrackState.FAILED })).toBe('track:failed');
    for (const type of ['track:created', 'track:ready', 'track:retried'] as const) {
      expect(webhookEventOf({ type, trackState: TrackState.PENDING })).toBe('needs-input-if-no-script');
      expect(webhookEventOf({ type, trackState: TrackState.WAITING })).toBeUndefined();
    }
    for (const type of ['track:retrying', 'track:claimed', 'track:succeeded', 'track:input', 'pipeline:started', 'pipeline:retried'] as const) {
      expect(webhookEventOf({ type, trackState: TrackState.PENDING })).toBeUndefined();
    }
  });
});

describe('delivery bodies', () => {
  const pipeline = { id: 7, name: 'nightly', state: PipelineState.FAILED, graph: { id: 3, name: 'nightly export' } };
  const occurredAt = new Date('2026-12-03T10:00:00.123Z');

  it('a pipeline event has no track', () => {
    expect(JSON.parse(deliveryBody({ deliveryId: 'd-1', event: 'pipeline:failed', occurredAt, pipeline }))).toEqual({
      id: 'd-1',
      event: 'pipeline:failed',
      occurredAt: '2026-12-03T10:00:00.123Z',
      pipeline: { id: 7, name: 'nightly', state: 'FAILED', graph: { id: 3, name: 'nightly export' } },
    });
  });

  it('a track event carries the track as the event left it', () => {
    const body = deliveryBody({
      deliveryId: 'd-2',
      event: 'track:failed',
      occurredAt,
      pipeline,
      track: { id: 12, name: 'export', state: TrackState.FAILED, attempt: 2, exitCode: 3, reason: 'The script exited with code 3.' },
    });
    expect(JSON.parse(body).track).toEqual({ id: 12, name: 'export', state: 'FAILED', attempt: 2, exitCode: 3, reason: 'The script exited with code 3.' });
  });

  it('track:needs-input says what to supply', () => {
    const body = JSON.parse(
      deliveryBody({
        deliveryId: 'd-3',
        event: 'track:needs-input',
        occurredAt,
        pipeline: { ...pipeline, state: PipelineState.RUNNING },
        track: { id: 13, name: 'report', state: TrackState.PENDING, attempt: 1, exitCode: null, reason: null, missingParams: ['operator'] },
      }),
    );
    expect(body.track).toEqual({
      id: 13,
      name: 'report',
      state: 'PENDING',
      attempt: 1,
      exitCode: null,
      reason: 'Waiting for input: supply operator with finishInput.',
      missingParams: ['operator'],
    });
  });
});

describe('signatures (GitHub scheme)', () => {
  it('is sha256= and the hex HMAC-SHA256 of the body bytes', () => {
    // The example of GitHub's documentation on validating webhook deliveries.
    expect(signature("It's a Secret to Everybody", 'Hello, World!')).toBe('sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17');
  });

  it('verifies only the exact body with the right secret', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 16 }), fc.string(), fc.string(), (secret, body, other) => {
        const header = signature(secret, body);
        expect(verifySignature(secret, body, header)).toBe(true);
        expect(verifySignature(secret, Buffer.from(body), header)).toBe(true);
        if (other !== body) expect(verifySignature(secret, other, header)).toBe(false);
        expect(verifySignature(`${secret}x`, body, header)).toBe(false);
      }),
    );
    expect(verifySignature('0123456789abcdef', '{}', undefined)).toBe(false);
    expect(verifySignature('0123456789abcdef', '{}', 'sha256=00')).toBe(false);
  });
});

describe('the retry schedule', () => {
  const since = new Date('2026-12-03T00:00:00Z');

  it('doubles from the base up to an hour, with up to half taken off as jitter', () => {
    expect([1, 2, 3, 4, 9, 10, 11, 30].map((n) => nominalDelayMs(DEFAULT_RETRY_SCHEDULE, n))).toEqual([
      10_000, 20_000, 40_000, 80_000, 2_560_000, 3_600_000, 3_600_000, 3_600_000,
    ]);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 60 }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (attempts, random) => {
        const now = new Date(since.getTime() + 1000);
        const next = afterFailedAttempt(DEFAULT_RETRY_SCHEDULE, attempts, since, now, random);
        const nominal = nominalDelayMs(DEFAULT_RETRY_SCHEDULE, attempts);
        if ('giveUp' in next) throw new Error('gave up within the window');
        const delay = next.retryAt.getTime() - now.getTime();
        expect(delay).toBeGreaterThanOrEqual(nominal / 2 - 1);
        expect(delay).toBeLessThanOrEqual(nominal);
      }),
    );
  });

  it('retries for a day, then gives up; a whole schedule makes a few dozen attempts', () => {
    const late = new Date(since.getTime() + DEFAULT_RETRY_SCHEDULE.windowMs - 1000);
    expect(afterFailedAttempt(DEFAULT_RETRY_SCHEDULE, 30, since, late, 0)).toEqual({ giveUp: true });
    for (const random of [0, 0.5, 0.999]) {
      let now = since;
      let attempts = 1;
      for (;;) {
        const next = afterFailedAttempt(DEFAULT_RETRY_SCHEDULE, attempts, since, now, random);
        if ('giveUp' in next) break;
        now = next.retryAt;
        attempts++;
      }
      expect(now.getTime() - since.getTime()).toBeLessThanOrEqual(DEFAULT_RETRY_SCHEDULE.windowMs);
      expect(now.getTime() - since.getTime()).toBeGreaterThan(DEFAULT_RETRY_SCHEDULE.windowMs - DEFAULT_RETRY_SCHEDULE.capMs);
      expect(attempts).toBeGreaterThanOrEqual(30);
      expect(attempts).toBeLessThanOrEqual(60);
    }
  });
});

describe('answers', () => {
  it('2xx is delivered; a redirect and anything else are failed attempts that say why', () => {
    expect(answerOutcome(200)).toEqual({ delivered: true });
    expect(answerOutcome(204)).toEqual({ delivered: true });
    expect(answerOutcome(302, 'http://169.254.169.254/')).toEqual({
      delivered: false,
      error: 'The receiver answered HTTP 302 (Found), a redirect to http://169.254.169.254/. Webhooks do not follow redirects: register the URL it points to.',
    });
    expect(answerOutcome(500)).toEqual({ delivered: false, error: 'The receiver answered HTTP 500 (Internal Server Error); only a 2xx answer counts as delivered.' });
  });

  it('keeps the first KiB of a body as text', () => {
    expect(responseBodyText(Buffer.from('ok'))).toBe('ok');
    expect(responseBodyText(Buffer.from('x'.repeat(5000)))).toHaveLength(1024);
    // A 3-byte character cut at the 1,024th byte, and a NUL.
    const cut = responseBodyText(Buffer.from(`${'a'.repeat(1022)}€`));
    expect(cut.startsWith('a'.repeat(1022))).toBe(true);
    expect(cut.endsWith('\ufffd')).toBe(true);
    expect(responseBodyText(Buffer.from('a\u0000b'))).toBe('a\ufffdb');
  });
});

describe('webhook input', () => {
  it('a URL: http(s), a host, no credentials, no fragment, not too long', () => {
    expect(requireWebhookUrl('url', ' https://hooks.example.com/x?y=1 ').href).toBe('https://hooks.example.com/x?y=1');
    expect(fieldOf(() => requireWebhookUrl('url', ''))).toMatchObject({ field: 'url', message: expect.stringMatching(/must not be empty/) });
    expect(fieldOf(() => requireWebhookUrl('url', 'hooks.example.com'))).toMatchObject({ field: 'url', message: expect.stringMatching(/is not a URL/) });
    expect(fieldOf(() => requireWebhookUrl('url', 'ftp://hooks.example.com/'))).toMatchObject({ message: expect.stringMatching(/http or https URL; "ftp"/) });
    expect(fieldOf(() => requireWebhookUrl('url', 'file:///etc/passwd'))).toMatchObject({ message: expect.stringMatching(/"file" is not supported/) });
    expect(fieldOf(() => requireWebhookUrl('url', 'https://user:pw@hooks.example.com/'))).toMatchObject({ message: expect.stringMatching(/user name or password/) });
    expect(fieldOf(() => requireWebhookUrl('url', 'https://hooks.example.com/#top'))).toMatchObject({ message: expect.stringMatching(/fragment/) });
    expect(fieldOf(() => requireWebhookUrl('url', `https://hooks.example.com/${'x'.repeat(2000)}`))).toMatchObject({ message: expect.stringMatching(/at most 2000/) });
  });

  it('events: at least one, each known, none twice, the error naming events.N', () => {
    expect(requireWebhookEvents('events', ['pipeline:failed', 'track:needs-input'])).toEqual(['pipeline:failed', 'track:needs-input']);
    expect(fieldOf(() => requireWebhookEvents('events', []))).toMatchObject({ field: 'events' });
    expect(fieldOf(() => requireWebhookEvents('events', ['pipeline:failed', 'pipeline:done']))).toEqual({
      field: 'events.1',
      message: '"pipeline:done" is not a webhook event. The events are pipeline:finished, pipeline:failed, pipeline:cancelled, track:failed, track:needs-input.',
    });
    expect(fieldOf(() => requireWebhookEvents('events', ['track:failed', 'track:failed']))).toMatchObject({ field: 'events.1', message: expect.stringMatching(/twice/) });
  });

  it('a secret: 16 to 256 characters on one line, no whitespace at the ends', () => {
    expect(requireWebhookSecret('secret', '0123456789abcdef')).toBe('0123456789abcdef');
    expect(fieldOf(() => requireWebhookSecret('secret', 'short'))).toMatchObject({ field: 'secret', message: expect.stringMatching(/5 characters long; it must have 16 to 256/) });
    expect(fieldOf(() => requireWebhookSecret('secret', 'x'.repeat(257)))).toMatchObject({ field: 'secret' });
    expect(fieldOf(() => requireWebhookSecret('secret', ' 0123456789abcdef'))).toMatchObject({ message: expect.stringMatching(/whitespace/) });
    expect(fieldOf(() => requireWebhookSecret('secret', '0123456789\nabcdef'))).toMatchObject({ message: expect.stringMatching(/one line/) });
  });
});
