import { GatewayError } from '@ai-lb/shared';

/**
 * One query parameter as a single string, or null when absent. Repeated (`?node=a&node=b`)
 * or nested values are a 400 naming it, never silently ignored: `?node=` given twice must
 * not quietly turn into "no node forced".
 */
export function queryParam(query: Record<string, unknown>, name: string): string | null {
  const value = query[name];
  if (value === undefined) return null;
  if (typeof value !== 'string') {
    throw new GatewayError('invalid_request', `query parameter '${name}' must be given once, as a plain value`, { param: name });
  }
  return value;
}
