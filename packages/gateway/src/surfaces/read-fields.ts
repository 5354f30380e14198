/**
 * Field readers for client request bodies of the translated surfaces. Each throws a
 * GatewayError('invalid_request') naming the field, which the surface renders in its own
 * error format; nothing here trusts the body's shape.
 */
import { GatewayError } from '@ai-lb/shared';

export type JsonRecord = Record<string, unknown>;

export function isRecord(value: unknown): value is JsonRecord {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function invalid(param: string, message: string): GatewayError {
  return new GatewayError('invalid_request', `${param}: ${message}`, { param });
}

export function requireRecord(value: unknown, param: string): JsonRecord {
  if (!isRecord(value)) throw invalid(param, 'must be an object');
  return value;
}

export function requireString(value: unknown, param: string): string {
  if (typeof value !== 'string') throw invalid(param, 'must be a string');
  return value;
}

export function requireArray(value: unknown, param: string): unknown[] {
  if (!Array.isArray(value)) throw invalid(param, 'must be an array');
  return value;
}

export function optionalNumber(record: JsonRecord, key: string, param = key): number | undefined {
  const value = record[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value)) throw invalid(param, 'must be a number');
  return value;
}

export function optionalInteger(record: JsonRecord, key: string, param = key): number | undefined {
  const value = optionalNumber(record, key, param);
  if (value !== undefined && !Number.isInteger(value)) throw invalid(param, 'must be an integer');
  return value;
}

export function optionalBoolean(record: JsonRecord, key: string, param = key): boolean | undefined {
  const value = record[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'boolean') throw invalid(param, 'must be a boolean');
  return value;
}

/** A string or a list of strings (stop sequences): always a list. */
export function optionalStringList(record: JsonRecord, key: string, param = key): string[] | undefined {
  const value = record[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return [value];
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string')) throw invalid(param, 'must be a list of strings');
  return value;
}

/** JSON.parse that answers undefined instead of throwing. */
export function parseJsonOrUndefined(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
