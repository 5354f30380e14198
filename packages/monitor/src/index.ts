export { startMonitor, type MonitorHandle, type StartMonitorOptions } from './start-monitor.ts';
export { expandTargets, MAX_SCAN_TARGETS, type ScanTarget } from './scan/targets.ts';
export { runScan, type ScanReport } from './scan/run-scan.ts';
export { createProbeClient } from './probes/probe-client.ts';
export { pollEngineLoads, type LoadPollReport } from './load/load-poll-loop.ts';
export { createLoadClient } from './load/load-client.ts';
export { engineLoadJson, formatEngineLoad, formatEngineLoadTable } from './load/format-engine-load.ts';
export { createCapacityResolver } from './resolve-capacity.ts';
export { createMonitorMetrics } from './metrics.ts';
