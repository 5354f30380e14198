import { describe, expect, test } from 'vitest';
import { normalizeUpstreamError } from './upstream-error-body.ts';

const parse = (body: Buffer) => JSON.parse(body.toString());

describe('normalizeUpstreamError', () => {
  test('an OpenAI envelope passes through byte for byte, code kept', () => {
    const raw = Buffer.from(
      '{"error":{"message":"too long","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}',
    );
    const out = normalizeUpstreamError(400, 'application/json', raw);
    expect(out.body).toBe(raw);
    expect(out.message).toBe('too long');
  });

  test('FastAPI {"detail": "…"} and validation arrays become the envelope', () => {
    expect(parse(normalizeUpstreamError(500, 'application/json', Buffer.from('{"detail":"engine dead"}')).body)).toEqual({
      error: { message: 'engine dead', type: 'server_error', param: null, code: 'upstream_500' },
    });
    const detail = '{"detail":[{"loc":["body","messages"],"msg":"field required","type":"missing"}]}';
    expect(parse(normalizeUpstreamError(422, 'application/json', Buffer.from(detail)).body).error.message).toBe(
      'body.messages: field required',
    );
  });

  test('Ollama\'s {"error": "…"} string becomes the envelope', () => {
    const out = normalizeUpstreamError(404, 'application/json', Buffer.from('{"error":"model \'x\' not found"}'));
    expect(parse(out.body).error).toMatchObject({ message: "model 'x' not found", type: 'not_found_error' });
  });

  test('HTML and plain text keep their message, tags stripped', () => {
    const html = '<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1><script>x()</script></body></html>';
    expect(normalizeUpstreamError(502, 'text/html', Buffer.from(html)).message).toBe('502 Bad Gateway');
    expect(normalizeUpstreamError(403, 'text/plain', Buffer.from('  forbidden\n')).message).toBe('forbidden');
    expect(normalizeUpstreamError(500, undefined, Buffer.alloc(0)).message).toContain('500');
  });

  test('huge messages are clipped', () => {
    expect(normalizeUpstreamError(500, 'text/plain', Buffer.from('x'.repeat(5000))).message.length).toBeLessThan(1100);
  });
});

describe('redactSecrets', () => {
  test('configured keys quoted by an upstream never reach the client', async () => {
    const { redactSecrets, secretsOf } = await import('./redact-secrets.ts');
    const secrets = secretsOf(new Map([['h:1', 'node-secret-123']]), ['gw-key-456', 'abc']);
    expect(secrets).toEqual(['node-secret-123', 'gw-key-456']);
    const raw = Buffer.from('{"error":{"message":"Incorrect API key provided: node-secret-123 (gw-key-456)"}}');
    expect(redactSecrets(raw, secrets).toString()).toBe('{"error":{"message":"Incorrect API key provided: *** (***)"}}');
    const clean = Buffer.from('{"error":{"message":"abc"}}');
    expect(redactSecrets(clean, secrets)).toBe(clean);
  });
});
