/**
 * OpenTelemetry traces end to end: a real gateway exports OTLP/HTTP JSON to a small
 * collector this test runs (node:http, recording what it is sent), with real fake upstreams.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { FakeLlmProcess } from '@ai-lb/testkit';
import { chatBody, nodeState, sseData, startGateway, useFakeServers } from '../testing/gateway-harness.ts';
import { finishReasonOfAnswer } from './tracing.ts';

let a: FakeLlmProcess;
let b: FakeLlmProcess;
useFakeServers(2, (servers) => ([a, b] = servers));

interface OtlpAttribute {
  key: string;
  value: {
    stringValue?: string;
    intValue?: number | string;
    doubleValue?: number;
    boolValue?: boolean;
    arrayValue?: { values: Array<{ stringValue?: string }> };
  };
}
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: OtlpAttribute[];
  status?: { code?: number; message?: string };
}

/** What the collector was sent: every span of every export, with its service name. */
const collector = { spans: [] as Array<OtlpSpan & { service: string }>, requests: 0, contentTypes: new Set<string>() };
let server: Server;
let endpoint: string;

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      collector.requests++;
      collector.contentTypes.add(String(req.headers['content-type']));
      if (req.url === '/v1/traces') {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
          resourceSpans: Array<{ resource: { attributes: OtlpAttribute[] }; scopeSpans: Array<{ spans: OtlpSpan[] }> }>;
        };
        for (const resource of body.resourceSpans) {
          const service = resource.resource.attributes.find((x) => x.key === 'service.name')?.value.stringValue ?? '';
          for (const scope of resource.scopeSpans) for (const span of scope.spans) collector.spans.push({ ...span, service });
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const attr = (span: OtlpSpan, key: string) => {
  const value = span.attributes.find((x) => x.key === key)?.value;
  if (value === undefined) return undefined;
  if (value.arrayValue) return value.arrayValue.values.map((v) => v.stringValue);
  return value.stringValue ?? value.doubleValue ?? (value.intValue !== undefined ? Number(value.intValue) : value.boolValue);
};

const CLIENT_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CLIENT_SPAN = '00f067aa0ba902b7';
const SPAN_KIND_SERVER = 2;
const SPAN_KIND_CLIENT = 3;
const STATUS_ERROR = 2;

describe('OpenTelemetry traces (OTEL_EXPORTER_OTLP_ENDPOINT set)', () => {
  test('a span per request under the client’s traceparent, a child span per attempt, GenAI attributes; each attempt’s traceparent goes upstream', async () => {
    const h = await startGateway('memory', {
      OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
      OTEL_SERVICE_NAME: 'gw-test',
      ROUTING_STRATEGY: 'ROUND_ROBIN',
    });
    await h.putNodes(nodeState(a.node, ['m1']), nodeState(b.node, ['m1']));
    await b.configure({ failMode: '500' });
    const traceparent = `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01`;
    // Round robin: one of the two requests starts on the failing node and fails over.
    for (let i = 0; i < 2; i++) {
      const res = await h.post('/v1/chat/completions', chatBody('m1'), { headers: { traceparent, 'x-request-id': `traced-${i}` } });
      expect(res.status).toBe(200);
      await res.arrayBuffer();
    }
    const stream = await h.post('/v1/chat/completions', chatBody('m1', { stream: true }), { headers: { 'x-request-id': 'traced-stream' } });
    expect(sseData(await stream.text()).at(-1)).toBe('[DONE]');
    await h.gateway.close(500); // exports what is batched

    expect([...collector.contentTypes]).toEqual(['application/json']);
    const spans = collector.spans.filter((s) => s.service === 'gw-test');
    const requests = spans.filter((s) => s.kind === SPAN_KIND_SERVER);
    expect(requests).toHaveLength(3);
    for (const id of ['traced-0', 'traced-1']) {
      const span = requests.find((s) => attr(s, 'ai_lb.request_id') === id)!;
      expect(span.traceId).toBe(CLIENT_TRACE);
      expect(span.parentSpanId).toBe(CLIENT_SPAN);
      expect(span.name).toBe('chat m1');
      expect(attr(span, 'gen_ai.operation.name')).toBe('chat');
      expect(attr(span, 'gen_ai.request.model')).toBe('m1');
      expect(attr(span, 'gen_ai.response.model')).toBe('m1');
      expect(attr(span, 'gen_ai.usage.input_tokens')).toBeGreaterThan(0);
      expect(attr(span, 'gen_ai.usage.output_tokens')).toBeGreaterThan(0);
      expect(attr(span, 'gen_ai.response.finish_reasons')).toEqual(['stop']);
      expect(attr(span, 'http.response.status_code')).toBe(200);
      expect(attr(span, 'ai_lb.node')).toBe(a.node);
    }
    const attempts = spans.filter((s) => s.kind === SPAN_KIND_CLIENT);
    const ofRequest = (id: string) => {
      const parent = requests.find((s) => attr(s, 'ai_lb.request_id') === id)!;
      return attempts.filter((s) => s.parentSpanId === parent.spanId && s.traceId === parent.traceId);
    };
    const counts = ['traced-0', 'traced-1'].map((id) => ofRequest(id).length).sort();
    expect(counts).toEqual([1, 2]);
    const failedOver = ofRequest('traced-0').length === 2 ? 'traced-0' : 'traced-1';
    const [first, second] = ofRequest(failedOver).sort((x, y) => Number(attr(x, 'ai_lb.attempt')) - Number(attr(y, 'ai_lb.attempt')));
    expect(attr(first, 'ai_lb.node')).toBe(b.node);
    expect(first.status?.code).toBe(STATUS_ERROR);
    expect(attr(first, 'error.type')).toBe('status_5xx');
    expect(attr(second, 'ai_lb.node')).toBe(a.node);
    expect(attr(second, 'server.address')).toBe('127.0.0.1');
    expect(attr(second, 'gen_ai.request.model')).toBe('m1');
    expect(second.status?.code ?? 0).not.toBe(STATUS_ERROR);

    // Each node was told its attempt's span as the parent, in the client's trace.
    const sentTo = (await a.stats()).traceparents;
    for (const span of [...ofRequest('traced-0'), ...ofRequest('traced-1')].filter((s) => attr(s, 'ai_lb.node') === a.node)) {
      expect(sentTo).toContain(`00-${CLIENT_TRACE}-${span.spanId}-01`);
    }
    // (the stream's own trace may have started on the failing node too)
    expect((await b.stats()).traceparents.filter((t) => t.includes(CLIENT_TRACE))).toEqual([`00-${CLIENT_TRACE}-${first.spanId}-01`]);

    // A stream without a client trace: a trace of its own, the finish reason read from its events.
    const streamed = requests.find((s) => attr(s, 'ai_lb.request_id') === 'traced-stream')!;
    expect(streamed.traceId).not.toBe(CLIENT_TRACE);
    expect(streamed.parentSpanId ?? '').toBe('');
    expect(attr(streamed, 'ai_lb.stream')).toBe(true);
    expect(attr(streamed, 'gen_ai.response.finish_reasons')).toEqual(['stop']);
    expect(attr(streamed, 'ai_lb.time_to_first_token_ms')).toBeGreaterThan(0);
  });

  test('a collector that is down costs the requests nothing', async () => {
    const down = createServer();
    await new Promise<void>((resolve) => down.listen(0, '127.0.0.1', resolve));
    const port = (down.address() as AddressInfo).port;
    await new Promise<void>((resolve) => down.close(() => resolve()));
    const h = await startGateway('memory', { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}` });
    await h.putNodes(nodeState(a.node, ['m1']));
    for (let i = 0; i < 3; i++) {
      const res = await h.post('/v1/chat/completions', chatBody('m1'));
      expect(res.status).toBe(200);
      await res.arrayBuffer();
    }
    const started = Date.now();
    await h.gateway.close(200);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  test('off (no endpoint): nothing is loaded or exported; a client’s valid traceparent passes to the node as is, a malformed one does not', async () => {
    const before = collector.requests;
    const h = await startGateway('memory');
    expect(h.gateway.services.tracer).toBeNull();
    await h.putNodes(nodeState(a.node, ['m1']));
    const valid = `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01`;
    for (const traceparent of [valid, '00-not-a-trace\r\nx-evil: 1', `00-${CLIENT_TRACE.toUpperCase()}-${CLIENT_SPAN}-01`]) {
      await (await h.post('/v1/chat/completions', chatBody('m1'), { headers: { traceparent } }).catch(() => null))?.arrayBuffer();
    }
    expect((await a.stats()).traceparents).toEqual([valid]);
    await h.gateway.close(200);
    expect(collector.requests).toBe(before);
  });
});

test('the finish reason of a whole answer, without parsing it', () => {
  const answer = (text: string) => Buffer.from(text);
  expect(finishReasonOfAnswer(answer('{"choices":[{"message":{},"finish_reason": "length"}],"usage":{}}'))).toBe('length');
  expect(finishReasonOfAnswer(answer('{"choices":[{"finish_reason":null}]}'))).toBeNull();
  expect(finishReasonOfAnswer(answer('{"data":[]}'))).toBeNull();
});
