/**
 * What the long-running entry points (`pnpm start`, `start:gateway`, `start:monitor`) share:
 *  - the config, loaded once (a bad value: one line naming the variable, exit 1);
 *  - one pino logger at LOG_LEVEL, JSON lines on stderr; each component gets a child whose
 *    lines carry `service` (gateway, monitor, …);
 *  - the ready line: {"port":N,"pid":P,...} as the FIRST stdout line once listening (tests
 *    and the benchmark read it; LOAD_BALANCER_PORT=0 / MONITOR_PORT=0 pick a free port);
 *  - startup failures as one line without a stack trace, exit 1;
 *  - SIGTERM/SIGINT: release everything (in-flight requests finish first), exit 0.
 */
import { ConfigError, createLogger, flushLogs, loadConfigOrExit, type Config, type Logger } from '@ai-lb/shared';

export interface ServiceContext {
  config: Config;
  /** This process's own lines (`service` = the name given to runService). */
  log: Logger;
  /** A child logger for one component of the process. */
  logFor(service: string): Logger;
  /** Registers how to release something started: releases run newest first on SIGTERM/SIGINT. */
  onStop(release: () => Promise<unknown>): void;
}

/** The ready line's fields after `pid`; `port` comes first in the line. */
export type ReadyFields = { port: number } & Record<string, unknown>;

/** A start-up failure whose message is already the one line to print. */
export class StartupError extends Error {
  override name = 'StartupError';
}

export async function runService(name: string, start: (context: ServiceContext) => Promise<ReadyFields>): Promise<void> {
  const config = loadConfigOrExit();
  const root = createLogger({ level: config.logLevel });
  const logFor = (service: string) => root.child({ service });
  const log = logFor(name);
  const releases: (() => Promise<unknown>)[] = [];
  const stop = async () => {
    for (const release of releases.splice(0).reverse()) {
      await release().catch((error: unknown) => log.warn({ err: error }, 'stopping: a release failed'));
    }
  };
  // One broken request must not take the whole process down: log it and keep serving.
  process.on('unhandledRejection', (reason) => log.error({ err: reason }, 'unhandled rejection'));

  let ready: ReadyFields;
  try {
    ready = await start({ config, log, logFor, onStop: (release) => releases.push(release) });
  } catch (error) {
    // Nothing has served yet, so there is nothing to drain: exit at once, not after a
    // graceful stop that may wait for a running scan.
    exitOnStartupError(error, log);
  }
  // Before the ready line: whoever reads it may send SIGTERM the moment it arrives.
  stopOnSignals(stop, log);
  const { port, ...rest } = ready;
  process.stdout.write(`${JSON.stringify({ port, pid: process.pid, ...rest })}\n`);
}

/**
 * Runs a listen (`bind`); a port taken or not allowed becomes one line naming the variable
 * that chose it, e.g. `LOAD_BALANCER_PORT=8000 is already in use`.
 */
export async function bindPort<T>(variable: string, port: number, bind: () => Promise<T>): Promise<T> {
  try {
    return await bind();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') throw new StartupError(`${variable}=${port} is already in use`, { cause: error });
    if (code === 'EACCES') throw new StartupError(`${variable}=${port} needs privileges this process lacks`, { cause: error });
    throw error;
  }
}

function stopOnSignals(stop: () => Promise<void>, log: Logger): void {
  let stopping = false;
  const shutdown = async (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    await stop();
    process.exit(0);
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}

/** `ai-lb: <one line>` on stderr and exit 1; an unexpected error is logged in full first. */
function exitOnStartupError(error: unknown, log: Logger): never {
  const expected = error instanceof StartupError || error instanceof ConfigError;
  if (!expected) log.error({ err: error }, 'start failed');
  const message = error instanceof Error ? error.message : String(error);
  flushLogs();
  process.stderr.write(`ai-lb: ${message.split('\n')[0]}\n`);
  process.exit(1);
}
