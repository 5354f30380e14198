import { spawn, type ChildProcess } from 'node:child_process';
import { freePort, stopChild, uniquePrefix, waitForPort } from '@ai-lb/testkit';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadConfig } from '../config/load-config.ts';
import { GatewayError } from '../errors.ts';
import { silentLogger } from '../logger.ts';
import { nodeState } from './contract-harness.ts';
import { createStateStore } from './create-state-store.ts';
import { ResilientStateStore } from './resilient-state-store.ts';
import type { StateStore } from './state-store.ts';

const redisUrl = inject('redisUrl');
const quiet = { log: silentLogger };

describe('createStateStore', () => {
  const stores: StateStore[] = [];
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((s) => s.close()));
  });
  const create = (...args: Parameters<typeof createStateStore>) => {
    const store = createStateStore(...args);
    stores.push(store);
    return store;
  };

  it('memory when neither REDIS_URL nor REDIS_HOST is set', () => {
    expect(create(loadConfig({}), quiet).kind).toBe('memory');
  });

  it('Redis when REDIS_URL is set, keys under REDIS_KEY_PREFIX', async () => {
    const prefix = uniquePrefix('create');
    const store = create(loadConfig({ REDIS_URL: redisUrl, REDIS_KEY_PREFIX: prefix }), quiet);
    expect(store.kind).toBe('redis');
    await store.putNode(nodeState('a:1'), 5000);
    const admin = new Redis(redisUrl);
    try {
      expect(await admin.exists(`${prefix}node:a:1`)).toBe(1);
      await admin.del(`${prefix}node:a:1`, `${prefix}nodes`);
    } finally {
      await admin.quit();
    }
  });

  it('resilient: Redis wrapped so an outage degrades instead of failing', async () => {
    const store = create(loadConfig({ REDIS_URL: redisUrl, REDIS_KEY_PREFIX: uniquePrefix('create') }), { ...quiet, resilient: true });
    expect(store).toBeInstanceOf(ResilientStateStore);
    await store.ping();
    expect(store.health()).toEqual({ degraded: false, reason: null, remoteFailures: 0 });
  });

  it('forceMemory wins over a configured Redis', () => {
    expect(create(loadConfig({ REDIS_URL: redisUrl }), { ...quiet, forceMemory: true }).kind).toBe('memory');
  });

  it('a Redis that is down: the store is created, the process stays up, calls fail fast', async () => {
    const port = await freePort();
    const store = create(loadConfig({ REDIS_HOST: '127.0.0.1', REDIS_PORT: String(port) }), quiet);
    const started = performance.now();
    await expect(store.ping()).rejects.toBeInstanceOf(GatewayError);
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('rediss:// means TLS: a plain-TCP Redis behind a rediss URL is not reachable', async () => {
    const plain = new URL(redisUrl);
    const store = create(loadConfig({ REDIS_URL: `rediss://${plain.host}` }), { ...quiet, connectTimeoutMs: 500 });
    await expect(store.ping()).rejects.toMatchObject({ code: 'state_unavailable' });
  });
});

describe('createStateStore with a password-protected Redis', () => {
  const password = 'p@ss/w:rd';
  let server: ChildProcess;
  let port: number;
  beforeAll(async () => {
    port = await freePort();
    server = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--requirepass', password],
      { stdio: 'ignore' },
    );
    await waitForPort(port, 10_000);
  });
  afterAll(async () => {
    await stopChild(server);
  });

  it('REDIS_PASSWORD (with characters URLs reserve) authenticates; a wrong one is refused', async () => {
    const good = createStateStore(loadConfig({ REDIS_HOST: '127.0.0.1', REDIS_PORT: String(port), REDIS_PASSWORD: password }), quiet);
    const bad = createStateStore(loadConfig({ REDIS_HOST: '127.0.0.1', REDIS_PORT: String(port), REDIS_PASSWORD: 'wrong' }), quiet);
    try {
      await good.ping();
      await expect(bad.ping()).rejects.toMatchObject({ code: 'state_unavailable' });
    } finally {
      await Promise.all([good.close(), bad.close()]);
    }
  });
});
