export * from './types.ts';
export * from './errors.ts';
export * from './redis-keys.ts';
export * from './config/parsers.ts';
export * from './config/schema.ts';
export * from './config/load-config.ts';
export * from './state/state-store.ts';
