/**
 * GATEWAY_API_KEYS as a check of an Authorization header, for the dashboard's state
 * endpoint on the monitor (the gateway may pass its own). Keys are compared as SHA-256
 * digests with timingSafeEqual, every key every time, so timing tells neither the key nor
 * which one matched. With no keys configured there is nothing to check: returns undefined.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

export function createBearerCheck(keys: readonly string[]): ((authorization: string | undefined) => boolean) | undefined {
  if (keys.length === 0) return undefined;
  const digests = keys.map(digest);
  return function checkBearer(authorization) {
    const match = authorization === undefined ? null : /^Bearer\s+(.+)$/i.exec(authorization.trim());
    if (match === null) return false;
    const given = digest(match[1]);
    let ok = false;
    for (const candidate of digests) ok = timingSafeEqual(given, candidate) || ok;
    return ok;
  };
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}
