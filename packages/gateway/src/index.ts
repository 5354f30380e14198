export * from './create-gateway.ts';
