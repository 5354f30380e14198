import { inject, test, expect } from 'vitest';
import { Redis } from 'ioredis';

test('the suite has a real redis-server', async () => {
  const redis = new Redis(inject('redisUrl'));
  try {
    expect(await redis.ping()).toBe('PONG');
  } finally {
    redis.disconnect();
  }
});
