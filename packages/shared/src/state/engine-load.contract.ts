import { expect, it } from 'vitest';
import type { EngineLoadReading } from '../engine-load.ts';
import { LONG_MS, type StoreUnderTest } from './contract-harness.ts';

export function reading(node: string, overrides: Partial<EngineLoadReading> = {}): EngineLoadReading {
  return { node, running: 3, waiting: 1, kvCacheUsage: 0.0731, loadedModels: null, at: 1_700_000_000_000, ...overrides };
}

/** putEngineLoads / getEngineLoads: what the monitor's load poller writes and gateways read. */
export function engineLoadContract(sut: () => StoreUnderTest): void {
  it('getEngineLoads returns each node’s reading as written; nodes without one are left out', async () => {
    const { store } = sut();
    const a = reading('10.0.0.1:8000');
    const b = reading('[::1]:11434', { running: null, waiting: null, kvCacheUsage: null, loadedModels: ['llama3.1:8b', 'qwen:émoji-🦙'] });
    await store.putEngineLoads([a, b], LONG_MS);
    expect(await store.getEngineLoads(['10.0.0.1:8000', '[::1]:11434', 'never:1'])).toEqual({ '10.0.0.1:8000': a, '[::1]:11434': b });
  });

  it('a later put replaces a node’s reading and leaves other nodes alone', async () => {
    const { store } = sut();
    await store.putEngineLoads([reading('a:1', { running: 1 }), reading('b:1', { running: 2 })], LONG_MS);
    await store.putEngineLoads([reading('a:1', { running: 7, loadedModels: [] })], LONG_MS);
    const loads = await store.getEngineLoads(['a:1', 'b:1']);
    expect(loads['a:1']).toMatchObject({ running: 7, loadedModels: [] });
    expect(loads['b:1']).toMatchObject({ running: 2 });
  });

  it('a reading expires after its TTL unless refreshed', async () => {
    const { store, advance } = sut();
    await store.putEngineLoads([reading('short:1'), reading('kept:1')], 300);
    await advance(200);
    await store.putEngineLoads([reading('kept:1')], 300);
    await advance(200);
    expect(Object.keys(await store.getEngineLoads(['short:1', 'kept:1']))).toEqual(['kept:1']);
  });

  it('a peer reads what another instance wrote', async () => {
    const { store, peer } = sut();
    const other = await peer();
    await other.putEngineLoads([reading('n:1', { waiting: 12 })], LONG_MS);
    expect((await store.getEngineLoads(['n:1']))['n:1']).toMatchObject({ waiting: 12 });
  });

  it('an empty write or read is a no-op', async () => {
    const { store } = sut();
    await store.putEngineLoads([], LONG_MS);
    expect(await store.getEngineLoads([])).toEqual({});
  });

  it('putEngineLoads rejects a bad TTL or a reading without node id, and writes nothing', async () => {
    const { store } = sut();
    await expect(store.putEngineLoads([reading('n:1')], 0)).rejects.toThrow(/ttlMs/);
    await expect(store.putEngineLoads([reading('n:1'), reading('')], LONG_MS)).rejects.toThrow(/node/);
    expect(await store.getEngineLoads(['n:1'])).toEqual({});
  });
}
