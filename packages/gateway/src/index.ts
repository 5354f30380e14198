export * from './create-gateway.ts';
export * from './logger.ts';
