import { randomBytes } from 'node:crypto';

/** A Redis key prefix no other test uses, so tests can share one redis-server. */
export function uniquePrefix(label = 't'): string {
  return `test:${label}:${randomBytes(4).toString('hex')}:`;
}
