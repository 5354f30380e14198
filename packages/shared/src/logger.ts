import { pino, type DestinationStream, type Level, type Logger as PinoLogger } from 'pino';
import { type LineEncoder, LineWriter } from './line-writer.ts';

export type { LineEncoder } from './line-writer.ts';

/** The one logger type of every package: pino's, so child loggers and levels work everywhere. */
export type Logger = PinoLogger;

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface CreateLoggerOptions {
  level?: LogLevel;
  /** Where lines go; stderr by default (stdout carries only a service's ready line). */
  destination?: DestinationStream;
  /** Fields on every line, e.g. { service: 'gateway' }. */
  base?: Record<string, unknown>;
}

/**
 * Paths cut out of every log line whatever a caller passes: keys and authorization headers
 * must never reach a log, even when someone logs a whole header object by mistake.
 */
export const REDACTED_PATHS = [
  'authorization',
  'headers.authorization',
  'headers["x-api-key"]',
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'apiKey',
  'apiKeys',
  'key',
  'password',
  '*.authorization',
  '*.apiKey',
  '*.password',
];

/**
 * JSON lines through pino: `time` as epoch ms, `level` as its label, `msg`; to stderr.
 *
 * Written asynchronously: a gateway writes a line per request (the access log), and a
 * synchronous write per line blocks the event loop whenever the reader of stderr is slower
 * than the requests (a full pipe spins until it drains). Lines go out in batches (see
 * LineWriter: up to 25 ms late). What is still queued when the process exits is flushed
 * synchronously then, so an exit, a fatal error or a signal loses no line.
 */
export function createLogger(options: CreateLoggerOptions = {}): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      base: options.base ?? null,
      formatters: { level: (label: string) => ({ level: label }) },
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    },
    options.destination ?? stderrDestination(),
  );
}

let stderr: LineWriter | undefined;

/** One asynchronous stderr writer per process, flushed at exit. */
function stderrDestination(): DestinationStream {
  if (stderr === undefined) {
    stderr = new LineWriter(2);
    process.once('exit', flushLogs);
  }
  return stderr;
}

/** Writes out what the stderr stream still holds, now (before a line that must come last). */
export function flushLogs(): void {
  stderr?.flushSync();
}

/** Where access-log lines go: one line per routed request, at level info. */
export interface AccessLog {
  /** Queues the line `encoder` writes for `item` (see LineWriter.writeLater); its time is now. */
  writeLater<T>(encoder: LineEncoder<T>, item: T): void;
  /** The parent's bindings as JSON members after `time` (`,"service":"gateway"`), or ''. */
  bindings: string;
}

/**
 * The access log: `parent`'s stream and bindings, or null when `parent` logs nothing at
 * info. The gateway writes each line itself (metrics.ts), in the layout `parent.info`
 * writes: its lines are request summaries built from known fields (never a body, a key or
 * a header), flat and of one shape, so neither redaction nor pino's key-by-key serialiser is
 * needed on every request. A stream other than the process's LineWriter (a test's, a
 * caller's destination) gets each line at once, as a string.
 */
export function accessLogger(parent: Logger): AccessLog | null {
  if (!parent.isLevelEnabled('info')) return null;
  const stream = (parent as unknown as Record<symbol, DestinationStream>)[pino.symbols.streamSym];
  const json = JSON.stringify(parent.bindings());
  const bindings = json === '{}' ? '' : `,${json.slice(1, -1)}`;
  if (stream instanceof LineWriter) return { writeLater: (encoder, item) => void stream.writeLater(encoder, item), bindings };
  const writeLater = <T>(encoder: LineEncoder<T>, item: T) => {
    const buf = Buffer.allocUnsafe(encoder.maxBytes(item));
    stream.write(buf.toString('utf8', 0, encoder.encode(buf, 0, item, Date.now())));
  };
  return { writeLater, bindings };
}

/** For libraries and tests that were given no logger. */
export const silentLogger: Logger = pino({ level: 'silent' });

export function isLogLevel(value: string): value is Level | 'silent' {
  return (LOG_LEVELS as readonly string[]).includes(value);
}
