/**
 * A hostile or careless client, or an upstream with odd answers, costs only its own request:
 * a client that stops reading is cut on its own write bound and never counts against the
 * node; bodies held whole share one memory budget (over it: 503 with Retry-After, not a
 * crash); an HTML page for a JSON request fails over; model ids that are not header-safe
 * are served with their headers encoded.
 */
import { connect, type Socket } from 'node:net';
import { describe, expect, test } from 'vitest';
import type { FakeLlmProcess } from '@ai-lb/testkit';
import { chatBody, eventually, nodeState, startGateway, STORE_KINDS, useFakeServers, type Harness } from './testing/gateway-harness.ts';

let a: FakeLlmProcess;
let b: FakeLlmProcess;
useFakeServers(2, (servers) => ([a, b] = servers));

interface NodesBody {
  data: Array<{ node: string; failures: number; circuit: string }>;
}

/** A client that sends one request and then reads nothing of the answer. */
function stalledClient(h: Harness, body: unknown): Socket {
  const url = new URL(h.url);
  const payload = JSON.stringify(body);
  const socket = connect(Number(url.port), url.hostname);
  socket.on('error', () => undefined);
  socket.write(
    `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(payload)}\r\n\r\n${payload}`,
  );
  socket.pause();
  return socket;
}

/**
 * Whether the gateway cut the stalled client: a paused socket only sees the end once it
 * drains what is buffered, so drain it now and wait for the close (a connection the gateway
 * kept open would instead finish its answer and stay open: no close within the bound).
 */
function cutByGateway(socket: Socket, withinMs = 10_000): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(false);
    }, withinMs);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
    socket.on('data', () => undefined);
    socket.resume();
  });
}

async function circuitOf(h: Harness, node: string) {
  const nodes = (await (await h.get('/v1/nodes')).json()) as NodesBody;
  return nodes.data.find((n) => n.node === node);
}

describe.each(STORE_KINDS)('budgets with the %s store', (kind) => {
  test('clients that stop reading a stream are cut on their own bound and never open the node’s circuit', async () => {
    const h = await startGateway(kind, { STREAM_IDLE_TIMEOUT_SECS: '0.3', CLIENT_WRITE_TIMEOUT_SECS: '1', CIRCUIT_BREAKER_THRESHOLD: '3' });
    await h.putNodes(nodeState(a.node, ['m1', 'fault-big-30000']));
    const clients = [1, 2, 3].map(() => stalledClient(h, chatBody('fault-big-30000', { stream: true })));
    // Stalled far longer than STREAM_IDLE_TIMEOUT_SECS (0.3 s): CLIENT_WRITE_TIMEOUT_SECS (1 s) cuts them.
    await eventually(async () => (await a.stats()).aborted === 3, 10_000);
    expect(await Promise.all(clients.map((c) => cutByGateway(c)))).toEqual([true, true, true]);
    expect(await circuitOf(h, a.node)).toMatchObject({ failures: 0, circuit: 'closed' });
    const ok = await h.post('/v1/chat/completions', chatBody('m1'));
    expect(ok.status).toBe(200);
    await ok.arrayBuffer();
  });

  test('answers held for clients that do not read share BUFFER_BUDGET_MB: over it a 503 with Retry-After, then served again', async () => {
    const h = await startGateway(kind, { BUFFER_BUDGET_MB: '50', CLIENT_WRITE_TIMEOUT_SECS: '5' });
    await h.putNodes(nodeState(a.node, ['m1', 'fault-big-20000']));
    const clients = [1, 2].map(() => stalledClient(h, chatBody('fault-big-20000')));
    // The upstream answered both in full: the gateway holds 2 × 20 MB for clients that do not read.
    await eventually(async () => {
      const stats = await a.stats();
      return stats.requests === 2 && stats.inflight === 0;
    }, 25_000); // 40 MB from one fake process: seconds on a busy machine
    const refused = await h.post('/v1/chat/completions', chatBody('fault-big-20000'));
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('memory_budget_exhausted');
    const small = await h.post('/v1/chat/completions', chatBody('m1'));
    expect(small.status).toBe(200);
    await small.arrayBuffer();
    // The stalled clients are cut after CLIENT_WRITE_TIMEOUT_SECS; their bytes are free again.
    await new Promise((r) => setTimeout(r, 5_500));
    expect(await Promise.all(clients.map((c) => cutByGateway(c)))).toEqual([true, true]);
    const served = await h.post('/v1/chat/completions', chatBody('fault-big-20000'));
    expect(served.status).toBe(200);
    expect((await served.arrayBuffer()).byteLength).toBeGreaterThan(20_000_000);
    expect(await circuitOf(h, a.node)).toMatchObject({ failures: 0, circuit: 'closed' });
  }, 60_000);

  test('a 200 text/html page for a JSON request fails over, as any unusable answer', async () => {
    const h = await startGateway(kind);
    await a.configure({ failMode: 'fault-html-200' });
    await h.putNodes(nodeState(a.node, ['m1']), nodeState(b.node, ['m1']));
    for (const stream of [false, true]) {
      for (let i = 0; i < 2; i++) {
        const res = await h.post('/v1/chat/completions', chatBody('m1', { stream }));
        expect(res.status).toBe(200);
        expect(res.headers.get('x-routed-node')).toBe(b.node);
        expect(res.headers.get('content-type')).not.toContain('html');
        await res.arrayBuffer();
      }
    }
  });

  test('model ids that are not header-safe are served; their headers are encoded, never injected', async () => {
    const h = await startGateway(kind);
    const hostile = ['uni-模型', 'evil\r\nx-injected: 1'];
    await h.putNodes(nodeState(a.node, hostile));
    for (const model of hostile) {
      for (const stream of [false, true]) {
        const res = await h.post('/v1/chat/completions', chatBody(model, { stream }));
        expect(res.status, model).toBe(200);
        expect(res.headers.get('x-injected')).toBeNull();
        expect(decodeURIComponent(res.headers.get('x-selected-model') ?? '')).toBe(model);
        expect(res.headers.get('x-ai-lb-gateway')).toBe('1');
        await res.arrayBuffer();
      }
    }
    expect(await circuitOf(h, a.node)).toMatchObject({ failures: 0, circuit: 'closed' });
  });
});
