/** Prometheus samples from a process's /metrics, by name with labels, e.g. `dagpipe_tracks{state="FAILED"}`. */
import { expect } from 'vitest';

/** `url`: the process's GraphQL URL (…/graphql) or a worker's /health URL. */
export async function scrapeMetrics(url: string, headers: Record<string, string> = {}): Promise<Map<string, number>> {
  const response = await fetch(url.replace(/\/(graphql|health)$/, '/metrics'), { headers });
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toContain('text/plain');
  const samples = new Map<string, number>();
  for (const line of (await response.text()).split('\n')) {
    const match = /^(dagpipe_[^\s]+)\s+(\S+)$/.exec(line);
    if (match) samples.set(match[1]!, Number(match[2]));
  }
  return samples;
}
