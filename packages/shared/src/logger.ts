import { pino, type DestinationStream, type Level, type Logger as PinoLogger } from 'pino';

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
 * JSON lines through pino: `time` as epoch ms, `level` as its label, `msg`; written
 * synchronously to stderr so a crash never loses its last line.
 */
export function createLogger(options: CreateLoggerOptions = {}): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      base: options.base ?? null,
      formatters: { level: (label: string) => ({ level: label }) },
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    },
    options.destination ?? pino.destination({ fd: 2, sync: true }),
  );
}

/** For libraries and tests that were given no logger. */
export const silentLogger: Logger = pino({ level: 'silent' });

export function isLogLevel(value: string): value is Level | 'silent' {
  return (LOG_LEVELS as readonly string[]).includes(value);
}
