export * from './free-port.ts';
export * from './start-redis.ts';
export * from './spawn-process.ts';
export * from './unique-prefix.ts';
