import { createHash, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import { GatewayError } from '@ai-lb/shared';

/**
 * GATEWAY_API_KEYS: every /v1 request needs `Authorization: Bearer <one of them>`.
 * Keys are compared as SHA-256 digests with timingSafeEqual: equal lengths always, and
 * every key is compared, so timing tells neither the key nor which one matched.
 */
export function requireApiKey(keys: readonly string[]) {
  const digests = keys.map(digest);
  return function checkApiKey(req: Request, _res: Response, next: NextFunction): void {
    const header = req.headers.authorization;
    const match = header === undefined ? null : /^Bearer\s+(.+)$/i.exec(header.trim());
    if (match === null) {
      next(invalidKey('missing bearer API key: send Authorization: Bearer <key>'));
      return;
    }
    const given = digest(match[1]);
    let ok = false;
    for (const candidate of digests) ok = timingSafeEqual(given, candidate) || ok;
    next(ok ? undefined : invalidKey('invalid API key'));
  };
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

function invalidKey(message: string): GatewayError {
  return new GatewayError('invalid_api_key', message, { headers: { 'www-authenticate': 'Bearer' } });
}
