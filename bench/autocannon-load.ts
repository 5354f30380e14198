/**
 * The fallback load generator when wrk is not installed: autocannon, in this process.
 * It costs more CPU than wrk (it is JavaScript sharing the 2 cores with the target) and
 * records latency in whole milliseconds, so sub-millisecond added latency is not
 * resolvable with it; the report names the generator used.
 */
import autocannon from 'autocannon';
import type { LoadRequest, LoadResult } from './load-result.ts';

export async function runAutocannon(request: LoadRequest): Promise<LoadResult> {
  const result = await autocannon({
    url: request.url,
    method: 'POST',
    body: request.body,
    headers: { 'content-type': 'application/json' },
    connections: request.connections,
    duration: request.durationSec,
    timeout: 10,
  });
  const requests = result['1xx'] + result['2xx'] + result['3xx'] + result['4xx'] + result['5xx'];
  return {
    generator: 'autocannon',
    requests,
    durationSec: result.duration,
    requestsPerSec: result.duration > 0 ? requests / result.duration : 0,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    errors: result.non2xx + result.errors, // errors already counts timeouts
  };
}
