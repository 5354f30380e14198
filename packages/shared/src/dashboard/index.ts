export * from './dashboard-state.ts';
export * from './build-dashboard-state.ts';
export * from './traffic-recorder.ts';
export * from './serve-dashboard.ts';
export * from './dashboard-assets.ts';
export * from './dashboard-handler.ts';
export * from './bearer-check.ts';
export * from './read-dashboard-state.ts';
