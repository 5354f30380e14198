import { describe, expect, test } from 'vitest';
import { BenchUsageError, parseBenchOptions, v8Flags } from './bench-options.ts';
import { parseWrkOutput } from './wrk-load.ts';

describe('parseBenchOptions', () => {
  test('defaults: 3 rounds of 3 s, every target, 1000 held streams each round', () => {
    const options = parseBenchOptions([]);
    expect(options).toMatchObject({ rounds: 3, durationSec: 3, connections: 50, heldStreams: 1000, heldEveryRound: true, json: false });
    expect(options.targets).toEqual(['direct', 'node-floor', 'hpm', 'gateway-memory', 'gateway-redis']);
  });

  test('--quick shortens runs and holds streams only in the last round; flags override it', () => {
    expect(parseBenchOptions(['--quick'])).toMatchObject({ rounds: 1, durationSec: 1, ttfbStreams: 50, heldEveryRound: false });
    expect(parseBenchOptions(['--quick', '--rounds', '5', '--json'])).toMatchObject({ rounds: 5, json: true });
  });

  test('streaming phase: 500 streams × 20 events/s for 4 s by default, 100 × 2 s with --quick; --phases picks parts', () => {
    expect(parseBenchOptions([])).toMatchObject({
      phases: ['throughput', 'held', 'stream'],
      streams: 500,
      eventsPerSec: 20,
      streamWindowSec: 4,
    });
    expect(parseBenchOptions(['--quick'])).toMatchObject({ streams: 100, streamWindowSec: 2 });
    const options = parseBenchOptions([
      '--phases',
      'stream,throughput',
      '--streams',
      '1000',
      '--events-per-sec',
      '50',
      '--stream-seconds',
      '8',
    ]);
    expect(options).toMatchObject({ phases: ['throughput', 'stream'], streams: 1000, eventsPerSec: 50, streamWindowSec: 8 });
    expect(() => parseBenchOptions(['--phases', 'stream,soak'])).toThrow(/--phases stream,soak: expected some of throughput,held,stream/);
    expect(() => parseBenchOptions(['--streams', '0'])).toThrow(/--streams 0: expected an integer from 1 to 5000/);
  });

  test('upstreams are uncapped unless --maxconn N caps each at N slots', () => {
    expect(parseBenchOptions([]).maxconn).toBe(0);
    expect(parseBenchOptions(['--maxconn', '200']).maxconn).toBe(200);
  });

  test('the payload is the flat one of every earlier row unless --payload engine', () => {
    expect(parseBenchOptions([]).payload).toBe('flat');
    expect(parseBenchOptions(['--payload', 'engine']).payload).toBe('engine');
    expect(() => parseBenchOptions(['--payload', 'agent'])).toThrow(/--payload agent: expected flat or engine/);
  });

  test('streams speak chat completions unless --stream-surface messages (Anthropic Messages)', () => {
    expect(parseBenchOptions([]).streamSurface).toBe('chat');
    expect(parseBenchOptions(['--stream-surface', 'messages']).streamSurface).toBe('messages');
    expect(() => parseBenchOptions(['--stream-surface', 'responses'])).toThrow(/--stream-surface responses: expected chat or messages/);
  });

  test('--targets always keeps direct and node-floor, the references of every ratio', () => {
    expect(parseBenchOptions(['--targets', 'gateway-redis']).targets).toEqual(['direct', 'node-floor', 'gateway-redis']);
  });

  test.each([
    [['--rounds', '0'], /--rounds 0: expected an integer from 1 to 50/],
    [['--duration', 'abc'], /--duration abc/],
    [['--targets', 'nginx'], /--targets nginx: expected some of direct,node-floor/],
    [['--generator', 'ab'], /--generator ab: expected wrk or autocannon/],
    [['--runtime', 'bun'], /--runtime bun: expected js or tsx/],
  ])('%j is refused with a message naming the flag', (argv, message) => {
    expect(() => parseBenchOptions(argv)).toThrow(BenchUsageError);
    expect(() => parseBenchOptions(argv)).toThrow(message);
  });

  test('the forwarders run as plain-JS bundles unless --runtime tsx', () => {
    expect(parseBenchOptions([]).runtime).toBe('js');
    expect(parseBenchOptions(['--runtime', 'tsx']).runtime).toBe('tsx');
  });

  test('every forwarder gets 8 MB V8 semi-spaces and 20 % heap growth unless told otherwise (0 = V8 default)', () => {
    expect(parseBenchOptions([]).semiSpaceMb).toBe(8);
    expect(parseBenchOptions(['--semi-space-mb', '0']).semiSpaceMb).toBe(0);
    expect(() => parseBenchOptions(['--semi-space-mb', '999'])).toThrow(/--semi-space-mb 999: expected an integer from 0 to 256/);
    expect(parseBenchOptions([]).heapGrowingPercent).toBe(20);
    expect(parseBenchOptions(['--heap-growing-percent', '0']).heapGrowingPercent).toBe(0);
    expect(() => parseBenchOptions(['--heap-growing-percent', '301'])).toThrow(
      /--heap-growing-percent 301: expected an integer from 0 to 300/,
    );
  });

  test("every forwarder runs without V8's memory reducer unless --memory-reducer", () => {
    expect(v8Flags(parseBenchOptions([]))).toContain('--no-memory-reducer');
    const withReducer = parseBenchOptions(['--memory-reducer']);
    expect(withReducer.memoryReducer).toBe(true);
    expect(v8Flags(withReducer)).toEqual(['--max-semi-space-size=8', '--heap-growing-percent=20']);
  });

  test("every forwarder keeps V8's inlining budget unless --inline-budget N (0 = V8 default)", () => {
    expect(v8Flags(parseBenchOptions([])).join(' ')).not.toContain('inlined');
    expect(v8Flags(parseBenchOptions(['--inline-budget', '3000']))).toContain('--max-inlined-bytecode-size-cumulative=3000');
    expect(() => parseBenchOptions(['--inline-budget', '100001'])).toThrow(/--inline-budget 100001: expected an integer from 0 to 100000/);
  });

  test('--baseline-env measures this build again with other settings, as baseline-*', () => {
    const options = parseBenchOptions(['--targets', 'gateway-memory', '--baseline-env', 'LOG_REQUESTS=false, LOG_LEVEL=warn']);
    expect(options.targets).toEqual(['direct', 'node-floor', 'gateway-memory', 'baseline-memory']);
    expect(options.baselineEnv).toEqual({ LOG_REQUESTS: 'false', LOG_LEVEL: 'warn' });
    expect(options.baselineDir).toBeUndefined();
    expect(() => parseBenchOptions(['--baseline-env', 'log_requests'])).toThrow(/--baseline-env log_requests: expected KEY=VALUE/);
  });

  test('an unknown flag is refused', () => {
    expect(() => parseBenchOptions(['--fast'])).toThrow(/--fast/);
  });
});

describe('parseWrkOutput', () => {
  test('reads the JSON line of wrk-post.lua and adds every error kind', () => {
    const stdout = [
      'Running 3s test @ http://127.0.0.1:1/v1/chat/completions',
      '  1 threads and 50 connections',
      'BENCH_JSON {"requests":30000,"durationUs":3000000,"bytes":1,"connectErrors":1,"readErrors":2,"writeErrors":3,"statusErrors":4,"timeouts":5,"p50Us":1500,"p99Us":9000,"maxUs":20000,"meanUs":1700.5}',
    ].join('\n');
    expect(parseWrkOutput(stdout)).toEqual({
      generator: 'wrk',
      requests: 30000,
      durationSec: 3,
      requestsPerSec: 10000,
      p50Ms: 1.5,
      p99Ms: 9,
      errors: 15,
    });
  });

  test('no JSON line is an error, not zeros', () => {
    expect(() => parseWrkOutput('unable to connect to 127.0.0.1:1 Connection refused')).toThrow(/BENCH_JSON/);
  });
});
