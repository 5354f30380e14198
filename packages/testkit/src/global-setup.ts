import type { TestProject } from 'vitest/node';
import { startRedis, type RedisServer } from './start-redis.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
  }
}

let redis: RedisServer | undefined;

/**
 * One real redis-server for the whole suite (or REDIS_URL when given). Tests isolate
 * themselves with a unique key prefix (see uniquePrefix) rather than separate servers.
 */
export async function setup(project: TestProject) {
  let url = process.env.REDIS_URL;
  if (!url) {
    redis = await startRedis();
    url = redis.url;
  }
  project.provide('redisUrl', url);
}

export async function teardown() {
  await redis?.stop();
}
