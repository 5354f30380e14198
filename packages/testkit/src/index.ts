export * from './free-port.ts';
export * from './start-redis.ts';
export * from './redis-monitor.ts';
export * from './spawn-process.ts';
export * from './unique-prefix.ts';
export * from './fake-llm-server.ts';
export * from './fake-kinds.ts';
export * from './start-fake-llm-server.ts';
