import { afterEach, expect, test } from 'vitest';
import { MemoryStateStore } from '../state/memory-state-store.ts';
import type { NodeState } from '../types.ts';
import { readDashboardState } from './read-dashboard-state.ts';

let store: MemoryStateStore;
afterEach(() => store?.close());

function record(node: string, models: string[]): NodeState {
  return {
    node,
    host: '127.0.0.1',
    port: Number(node.split(':')[1]),
    kind: 'openai',
    healthy: true,
    models,
    loadedModels: [],
    maxconn: 2,
    capacitySource: 'map',
    detectedMaxconn: null,
    latencyMs: 1,
    lastSeenMs: 1,
    checkedAtMs: 1,
    error: null,
    serverLoad: null,
  };
}

test('reads every node with its fleet-wide slots and circuit from the store, plus what the caller adds', async () => {
  store = new MemoryStateStore();
  await store.putNode(record('127.0.0.1:1', ['m']), 60_000);
  await store.putNode(record('127.0.0.1:2', ['m']), 60_000);
  const lease = await store.acquireSlot({
    candidates: [{ node: '127.0.0.1:2', maxconn: 2 }],
    order: 'in_order',
    leaseId: 'l1',
    leaseMs: 60_000,
    probeLeaseMs: 1000,
  });
  expect(lease.node).toBe('127.0.0.1:2');
  const state = await readDashboardState({ service: 'monitor', store, clock: () => 42, queues: () => ({ m: 3 }) });
  expect(state.generatedAtMs).toBe(42);
  expect(state.fleet.map((n) => [n.node, n.slots.used, n.slots.cap, n.circuit, n.queued])).toEqual([
    ['127.0.0.1:1', 0, 2, 'closed', 3],
    ['127.0.0.1:2', 1, 2, 'closed', 3],
  ]);
  expect(state.summary).toMatchObject({ nodes: 2, inflight: 1, queued: 3 });
  expect(state.scan).toBeNull();
  expect(state.traffic).toBeNull();
});
