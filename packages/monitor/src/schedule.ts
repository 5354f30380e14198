/**
 * When scans run: every SCAN_INTERVAL seconds through node-cron, never two at once.
 *
 * Cron fields only express intervals that divide their unit evenly (*\/7 in the seconds
 * field fires at :00, :07, … :56 and again at :00 — a 4 s gap). So:
 *  - an interval that divides 60 s, 60 min or 24 h becomes one cron step (`*\/10 * * * * *`);
 *  - any other interval (7 s, 45 s, 90 s) ticks every second (`* * * * * *`) and fires on
 *    every Nth tick: exactly every N s, at the cost of a no-op callback per second.
 * The timezone is UTC so a DST change never pauses or doubles a schedule.
 *
 * A tick that finds the previous scan still running is skipped and counted (onSkip):
 * queueing it would only make the next scan start late and stack up behind a slow network.
 * A tick while `shouldRun` says no (another monitor holds the lease) does nothing.
 */
import cron, { type ScheduledTask } from 'node-cron';

export interface CronPlan {
  expression: string;
  /** Fire on every Nth cron tick (1 = every tick). */
  everyTicks: number;
}

export function cronPlan(intervalSecs: number): CronPlan {
  if (!Number.isInteger(intervalSecs) || intervalSecs < 1) throw new RangeError(`interval ${intervalSecs}s: expected an integer ≥ 1`);
  if (intervalSecs < 60 && 60 % intervalSecs === 0) return { expression: `*/${intervalSecs} * * * * *`, everyTicks: 1 };
  const minutes = intervalSecs / 60;
  if (Number.isInteger(minutes) && minutes < 60 && 60 % minutes === 0) return { expression: `0 */${minutes} * * * *`, everyTicks: 1 };
  const hours = intervalSecs / 3600;
  if (Number.isInteger(hours) && hours <= 24 && 24 % hours === 0) return { expression: `0 0 */${hours} * * *`, everyTicks: 1 };
  return { expression: '* * * * * *', everyTicks: intervalSecs };
}

export interface ScanScheduler<T> {
  /** Starts the cron task (the first scan is the caller's: runNow()). */
  start(): void;
  /** Runs a scan now, or returns the one already running: manual and scheduled scans never overlap. */
  runNow(): Promise<T>;
  /** Stops the cron task and waits for a running scan to settle. */
  stop(): Promise<void>;
  readonly busy: boolean;
}

export function createScanScheduler<T>(options: {
  intervalSecs: number;
  scan: () => Promise<T>;
  onSkip: () => void;
  onError: (error: unknown) => void;
  shouldRun?: () => boolean;
}): ScanScheduler<T> {
  const plan = cronPlan(options.intervalSecs);
  let inFlight: Promise<T> | undefined;
  let ticks = 0;
  let task: ScheduledTask | undefined;

  function runNow(): Promise<T> {
    inFlight ??= options.scan().finally(() => {
      inFlight = undefined;
    });
    return inFlight;
  }

  function tick() {
    if (++ticks < plan.everyTicks) return;
    ticks = 0;
    if (options.shouldRun?.() === false) return;
    if (inFlight) return options.onSkip();
    runNow().catch(options.onError);
  }

  return {
    start() {
      task ??= cron.createTask(plan.expression, tick, { name: 'ai-lb-scan', timezone: 'UTC', suppressMissedWarning: true });
      void task.start();
    },
    runNow,
    async stop() {
      await task?.destroy();
      task = undefined;
      await inFlight?.catch(() => undefined);
    },
    get busy() {
      return inFlight !== undefined;
    },
  };
}
