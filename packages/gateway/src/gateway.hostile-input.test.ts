/**
 * Bad input and hostile clients: each gets a clear 4xx in the OpenAI envelope (or, for a
 * client too slow to send its body, a 408 and a closed connection), nothing reaches an
 * upstream, and the gateway keeps serving everyone else. Ends with a property test that
 * throws thousands of generated bad requests at a running gateway.
 * Also covered in gateway.http.test.ts: the field-naming 400 table, 413 by Content-Length
 * and by a chunked body, 404/405 envelopes.
 */
import { connect } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { startFakeLlmServer, type FakeLlmProcess } from '@ai-lb/testkit';
import { chatBody, nodeState, startGateway, STORE_KINDS, type Harness } from './testing/gateway-harness.ts';

let a: FakeLlmProcess;

beforeAll(async () => {
  a = await startFakeLlmServer();
});
afterAll(async () => {
  await a?.stop();
});
beforeEach(async () => {
  await a.reset();
});

interface RawReply {
  status: number | null;
  head: string;
  body: string;
  /** The server closed the connection (rather than our timeout ending the wait). */
  closed: boolean;
  ms: number;
}

/**
 * Writes raw bytes on a fresh connection (what fetch refuses to send), optionally more
 * chunks every `everyMs`, and reads until the server closes or `timeoutMs` passes.
 */
function raw(
  url: string,
  first: Buffer | string,
  options: { more?: () => Buffer | null; everyMs?: number; timeoutMs?: number } = {},
): Promise<RawReply> {
  const { port } = new URL(url);
  const started = Date.now();
  return new Promise((resolve) => {
    const socket = connect(Number(port), '127.0.0.1');
    const received: Buffer[] = [];
    let pump: NodeJS.Timeout | undefined;
    const finish = (closed: boolean) => {
      clearInterval(pump);
      clearTimeout(limit);
      socket.destroy();
      const text = Buffer.concat(received).toString('latin1');
      const split = text.indexOf('\r\n\r\n');
      const status = /^HTTP\/1\.1 (\d{3})/.exec(text);
      resolve({
        status: status ? Number(status[1]) : null,
        head: split === -1 ? text : text.slice(0, split),
        body: split === -1 ? '' : text.slice(split + 4),
        closed,
        ms: Date.now() - started,
      });
    };
    const limit = setTimeout(() => finish(false), options.timeoutMs ?? 5000);
    socket.on('data', (chunk) => received.push(chunk));
    socket.on('close', () => finish(true));
    socket.on('error', () => undefined); // EPIPE/ECONNRESET after the server closed: reported by 'close'
    socket.write(first);
    if (options.more) {
      pump = setInterval(() => {
        const next = options.more!();
        if (next === null || socket.destroyed) return clearInterval(pump);
        socket.write(next);
      }, options.everyMs ?? 1);
    }
  });
}

function envelopeOf(text: string): { message: string; type: string; param: string | null; code: string } {
  const body = JSON.parse(text) as { error: { message: string; type: string; param: string | null; code: string } };
  expect(Object.keys(body.error).sort()).toEqual(['code', 'message', 'param', 'type']);
  return body.error;
}

async function stillServes(h: Harness): Promise<void> {
  const res = await h.post('/v1/chat/completions', chatBody('m1'));
  expect(res.status).toBe(200);
  await res.arrayBuffer();
}

describe.each(STORE_KINDS)('hostile input with the %s store', (kind) => {
  const gateway = async (env: Record<string, string> = {}) => {
    const h = await startGateway(kind, { REQUEST_TIMEOUT_SECS: '0.5', ...env });
    await h.putNodes(nodeState(a.node, ['m1']));
    return h;
  };

  test('malformed JSON, wrong types, missing fields, non-UTF-8 bytes, deep nesting: 400 envelopes', async () => {
    const h = await gateway();
    const deep = (n: number) => `{"model":"m1","messages":[{"role":"user","content":${'['.repeat(n)}${']'.repeat(n)}}]}`;
    const cases: Array<[string | Buffer, RegExp]> = [
      ['{"model":"m1","messages":[{"role":"user","content":"x"}]', /not valid JSON/],
      ['{"model":"m1",}', /not valid JSON/],
      ['"just a string"', /must be a JSON object/],
      ['null', /must be a JSON object/],
      ['{"model":["m1"],"messages":[{"role":"user","content":"x"}]}', /'model' must be a string/],
      ['{"model":"m1","messages":{"role":"user"}}', /'messages' is required/],
      ['{"model":"m1","messages":[null]}', /every item of 'messages'/],
      ['{"model":"m1","messages":[{"role":"user","content":"x"}],"stream":1}', /'stream' must be a boolean/],
      [
        Buffer.concat([
          Buffer.from('{"model":"m1","messages":[{"role":"user","content":"'),
          Buffer.from([0xff, 0xfe, 0xc3]),
          Buffer.from('"}]}'),
        ]),
        /not valid UTF-8/,
      ],
      [deep(200_000), /nested too deeply/],
      [
        `{"model":"m1","messages":[{"role":"user","content":"x"}],"x":${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}}`,
        /nested too deeply/,
      ],
    ];
    for (const [body, message] of cases) {
      const res = await fetch(`${h.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: bytes(body),
      });
      const text = await res.text();
      expect(res.status, text.slice(0, 200)).toBe(400);
      const error = envelopeOf(text);
      expect(error.type).toBe('invalid_request_error');
      expect(error.message).toMatch(message);
    }
    // Moderate nesting is the upstream's business: passed through untouched.
    const ok = await h.post('/v1/chat/completions', deep(500));
    expect(ok.status).toBe(200);
    await ok.arrayBuffer();
    expect((await a.stats()).requests).toBe(1);
  });

  test('a 100 MB body: 413 and the connection closed, without reading it all; others still served', async () => {
    // The size is what is tested: a 0.5 s time bound (408) could come first on a loaded machine.
    const h = await gateway({ REQUEST_TIMEOUT_SECS: '5' });
    const chunk = Buffer.alloc(1024 * 1024, 'x');
    let sent = 0;
    const head = 'POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n';
    const reply = await raw(h.url, `${head}100000\r\n`, {
      more: () => (sent++ < 100 ? Buffer.concat([chunk, Buffer.from(sent < 100 ? '\r\n100000\r\n' : '\r\n0\r\n\r\n')]) : null),
      timeoutMs: 10_000,
    });
    expect(reply.closed).toBe(true);
    expect(reply.ms).toBeLessThan(5000);
    // Either the 413 was read before the connection closed, or the close came first (the
    // client was still writing): never a 2xx, never a 5xx.
    if (reply.status !== null) {
      expect(reply.status).toBe(413);
      expect(envelopeOf(reply.body).code).toBe('body_too_large');
    }
    expect(sent).toBeLessThan(100);
    await stillServes(h);
    expect((await a.stats()).requests).toBe(1);
  });

  test('a body that never finishes: 408 after REQUEST_TIMEOUT_SECS and the connection closed', async () => {
    const h = await gateway();
    const head =
      'POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{"model":"m1",';
    let drips = 0;
    const reply = await raw(h.url, head, { more: () => (drips++ < 40 ? Buffer.from(' ') : null), everyMs: 50, timeoutMs: 4000 });
    expect(reply.status).toBe(408);
    expect(envelopeOf(reply.body).code).toBe('request_timeout');
    expect(reply.closed).toBe(true);
    expect(reply.ms).toBeGreaterThanOrEqual(450);
    expect(reply.ms).toBeLessThan(1500);
    await stillServes(h);
  });

  test('header injection in x-request-id and ?node=: replaced or refused, never echoed or dialled', async () => {
    const h = await gateway();
    const body = JSON.stringify(chatBody('m1'));
    const reply = await raw(
      h.url,
      Buffer.concat([
        Buffer.from(
          'POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nx-request-id: evil\xff\xfe id <script>\r\n',
        ),
        Buffer.from(`content-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`),
      ]),
    );
    expect(reply.status).toBe(200);
    const echoed = /x-request-id: (.*)/i.exec(reply.head)?.[1];
    expect(echoed).toMatch(/^[0-9a-f-]{36}$/);
    expect((await a.stats()).requestIds).toEqual([echoed]);

    for (const node of [
      '127.0.0.1:1%0d%0aX-Evil:%201',
      'http://169.254.169.254/latest',
      `${a.node}%00`,
      '[::1]:1',
      `localhost:${a.port}`,
    ]) {
      const res = await h.post(`/v1/chat/completions?node=${node}`, chatBody('m1'));
      expect(res.status, node).toBe(404);
      expect(res.headers.get('x-evil')).toBeNull();
      expect(envelopeOf(await res.text()).code).toBe('node_not_eligible');
    }
    const twice = await h.post(`/v1/chat/completions?node=${a.node}&node=${a.node}`, chatBody('m1'));
    expect(twice.status).toBe(400);
    expect(envelopeOf(await twice.text()).param).toBe('node');
    expect((await a.stats()).requests).toBe(1);
  });

  test('unknown and wrong HTTP methods: 405 envelopes, or 400 for what HTTP cannot parse', async () => {
    const h = await gateway();
    for (const method of ['GET', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
      const res = await fetch(`${h.url}/v1/chat/completions`, { method });
      expect(res.status, method).toBe(405);
      expect(envelopeOf(await res.text()).code).toBe('method_not_allowed');
    }
    const statuses: Record<string, number | null> = {};
    for (const method of ['FOO', 'PROPFIND', 'CONNECT']) {
      const reply = await raw(
        h.url,
        `${method} /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`,
        { timeoutMs: 2000 },
      );
      // Either a clean 4xx, or (CONNECT with no tunnel support) the connection closed at once.
      expect(reply.closed, method).toBe(true);
      if (reply.status !== null) {
        expect(reply.status, method).toBeGreaterThanOrEqual(400);
        expect(reply.status, method).toBeLessThan(500);
        expect(envelopeOf(reply.body).type).toBe('invalid_request_error');
      }
      statuses[method] = reply.status;
    }
    expect(statuses).toMatchObject({ FOO: 400, PROPFIND: 405 });
    await stillServes(h);
  });

  test('property: thousands of generated bad requests: 0 crashes, 0 5xx, 0 hangs', async () => {
    const h = await gateway({ MAX_BODY_BYTES: '65536' });
    const failures: string[] = [];
    const onCrash = (error: unknown) => failures.push(`uncaught: ${String(error)}`);
    process.on('uncaughtException', onCrash);
    process.on('unhandledRejection', onCrash);
    let sent = 0;
    const started = Date.now();
    try {
      await fc.assert(
        fc.asyncProperty(fc.array(badRequest(), { minLength: 20, maxLength: 20 }), async (batch) => {
          const results = await Promise.all(batch.map((req) => send(h.url, req)));
          sent += batch.length;
          return results.every((r) => r.ok);
        }),
        // 50 batches of 20 per store: 2,000 requests over both stores.
        { numRuns: 50, endOnFailure: true },
      );
    } finally {
      process.off('uncaughtException', onCrash);
      process.off('unhandledRejection', onCrash);
    }
    expect(failures).toEqual([]);
    expect(sent).toBeGreaterThanOrEqual(1000);
    // Typically 2–5 s; the bound leaves room for a loaded CI machine.
    expect(Date.now() - started).toBeLessThan(20_000);
    await stillServes(h);
  }, 40_000);
});

interface BadRequest {
  method: string;
  path: string;
  query: string;
  headers: Record<string, string>;
  body: Uint8Array | string | null;
}

const printable = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 200 });

/** Requests a hostile or broken client might send: any of them may be bad in several ways at once. */
function badRequest(): fc.Arbitrary<BadRequest> {
  const message = fc.oneof(
    fc.anything(),
    fc.record({ role: fc.constantFrom('user', 'system', 'assistant', 'tool', ''), content: fc.anything() }),
  );
  const fields = fc.record(
    {
      model: fc.oneof(fc.constantFrom('m1', 'auto', 'default', 'missing-model', 'fault-hang', ''), fc.anything()),
      messages: fc.oneof(fc.array(message, { maxLength: 3 }), fc.anything()),
      input: fc.oneof(fc.string(), fc.array(fc.anything(), { maxLength: 3 }), fc.anything()),
      stream: fc.oneof(fc.boolean(), fc.anything()),
      max_tokens: fc.anything(),
    },
    { requiredKeys: [] },
  );
  const body = fc.oneof(
    fields.map((f) => JSON.stringify(f)),
    fc.json(),
    fc.string({ maxLength: 300 }),
    fc.uint8Array({ maxLength: 300 }),
    fc.constant(null),
    fc.integer({ min: 1, max: 3000 }).map((n) => `{"model":"m1","messages":${'['.repeat(n)}`),
    // Closed nesting, deep enough to overflow a recursive serializer.
    fc
      .integer({ min: 1, max: 30_000 })
      .map((n) => `{"model":"m1","messages":[{"role":"user","content":${'['.repeat(n)}${']'.repeat(n)}}]}`),
  );
  return fc.record({
    method: fc.constantFrom('POST', 'POST', 'POST', 'GET', 'PUT', 'DELETE', 'PATCH', 'HEAD'),
    path: fc.oneof(
      fc.constantFrom('/v1/chat/completions', '/v1/embeddings', '/v1/models', '/v1/eligible_nodes', '/health'),
      printable.map((p) => `/${encodeURIComponent(p)}`),
    ),
    query: fc.oneof(
      fc.constant(''),
      printable.map((v) => `?node=${encodeURIComponent(v)}`),
      printable.map((v) => `?model=${encodeURIComponent(v)}&require_all=${encodeURIComponent(v)}`),
    ),
    headers: fc.record(
      {
        'content-type': fc.oneof(fc.constant('application/json'), printable),
        'x-request-id': printable,
        'x-session-id': printable,
        authorization: printable,
      },
      { requiredKeys: [] },
    ),
    body,
  });
}

/** A body fetch accepts: strings as they are, bytes copied into a plain Uint8Array. */
function bytes(body: string | Uint8Array): string | Uint8Array<ArrayBuffer> {
  return typeof body === 'string' ? body : new Uint8Array(body);
}

/** Sends one generated request; ok unless the gateway answered 5xx, broke the envelope, or hung. */
async function send(url: string, req: BadRequest): Promise<{ ok: boolean }> {
  const hasBody = req.body !== null && req.method !== 'GET' && req.method !== 'HEAD';
  try {
    const res = await fetch(url + req.path + req.query, {
      method: req.method,
      headers: req.headers,
      body: hasBody ? bytes(req.body!) : undefined,
      // A hang: no answer within this bound (each answer takes milliseconds).
      signal: AbortSignal.timeout(5000),
    });
    const text = await res.text();
    if (res.status >= 500) return { ok: false };
    if (res.status >= 400 && req.method !== 'HEAD') JSON.parse(text).error.message.toString();
    return { ok: true };
  } catch (error) {
    // fetch itself refuses some generated headers (TypeError before sending): not the gateway's doing.
    if (error instanceof TypeError && !(error as { cause?: unknown }).cause) return { ok: true };
    return { ok: false };
  }
}
