/**
 * Which of several monitors scans: the one holding the monitor lease in the state store.
 * Every monitor asks for it every leaseMs/3 — the holder thereby renews it, the others
 * find it taken and stand by. When the holder dies (even by SIGKILL) its lease runs out
 * within leaseMs and the next standby to ask takes it and scans at once, so the fleet
 * is re-probed within about 1.3 × leaseMs. One writer at a time keeps the fleet's view
 * coherent (no two monitors with different reachability overwriting each other's
 * verdicts) and the servers probed once per interval, not once per monitor.
 *
 * The lease doubles as the monitor's heartbeat: gateways see it in StateStore.listFleet.
 */
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import type { StateStore } from '@ai-lb/shared';

/** Half the scan interval, within 1–10 s: a standby takes over well before records turn stale. */
export function monitorLeaseMs(scanIntervalSecs: number): number {
  return Math.min(10_000, Math.max(1000, Math.round((scanIntervalSecs * 1000) / 2)));
}

/** host:pid:random — readable in /health and listFleet, unique across restarts. */
export function newMonitorId(): string {
  return `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
}

export interface MonitorLeaseKeeper {
  /** Asks once (the caller learns at once whether it scans), then every leaseMs/3. */
  start(): Promise<void>;
  /** Stops asking and frees the lease if held, so a standby takes over without waiting. */
  stop(): Promise<void>;
  /** This monitor holds a lease that has not run out by its own clock. */
  readonly held: boolean;
  /** The holder at the last answer (this monitor or another), null before one. */
  readonly holder: string | null;
  /** Why the last claim failed (the store is unreachable), null after a success. */
  readonly lastError: string | null;
}

export function createMonitorLeaseKeeper(options: {
  store: StateStore;
  monitorId: string;
  leaseMs: number;
  /** Called when this monitor becomes the holder (at start or on taking over). */
  onGained: () => void;
  onChange?: (held: boolean, holder: string | null) => void;
}): MonitorLeaseKeeper {
  const { store, monitorId, leaseMs } = options;
  let holder: string | null = null;
  // Local monotonic time until which a claim that answered "yours" holds: counted from
  // when the claim was SENT, so a slow answer never stretches it past the store's expiry.
  let heldUntil = 0;
  let lastError: string | null = null;
  let timer: NodeJS.Timeout | undefined;
  let claiming: Promise<void> | undefined;
  let wasHeld = false;

  const isHeld = () => holder === monitorId && performance.now() < heldUntil;

  async function claim(): Promise<void> {
    const sentAt = performance.now();
    try {
      const lease = await store.claimMonitorLease(monitorId, leaseMs);
      holder = lease.monitorId;
      if (holder === monitorId) heldUntil = sentAt + leaseMs;
      lastError = null;
    } catch (error) {
      lastError = error instanceof Error ? error.message : String(error);
    }
    const held = isHeld();
    if (held !== wasHeld) {
      wasHeld = held;
      options.onChange?.(held, holder);
      if (held) options.onGained();
    }
  }

  function tick() {
    claiming ??= claim().finally(() => {
      claiming = undefined;
    });
  }

  return {
    async start() {
      tick();
      await claiming;
      timer ??= setInterval(tick, Math.max(100, Math.floor(leaseMs / 3)));
      timer.unref();
    },
    async stop() {
      clearInterval(timer);
      timer = undefined;
      await claiming;
      if (holder === monitorId) await store.releaseMonitorLease(monitorId).catch(() => undefined);
      holder = null;
      heldUntil = 0;
    },
    get held() {
      return isHeld();
    },
    get holder() {
      return holder;
    },
    get lastError() {
      return lastError;
    },
  };
}
