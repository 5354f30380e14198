type AbortListener = () => void;

/**
 * What the gateway's code (and undici, as a request `signal`) reads of an abort signal.
 * A real AbortSignal is one; so is an AbortSwitch.
 */
export interface AbortSignalLike {
  readonly aborted: boolean;
  readonly reason: unknown;
  addEventListener(type: 'abort', listener: AbortListener, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: AbortListener): void;
}

/**
 * A one-shot abort signal and its trigger in one small object: a request has two (the
 * client's and the attempt's), and AbortController's AbortSignal with EventTarget listeners
 * costs several times more per request (docs/performance.md). A request has one to three
 * listeners, held in an array; every listener is called once, as with `{ once: true }`.
 */
export class AbortSwitch implements AbortSignalLike {
  aborted = false;
  reason: unknown = undefined;
  private listeners: AbortListener[] = [];

  addEventListener(type: 'abort', listener: AbortListener): void {
    if (type === 'abort' && !this.aborted) this.listeners.push(listener);
  }

  removeEventListener(type: 'abort', listener: AbortListener): void {
    if (type !== 'abort') return;
    const index = this.listeners.indexOf(listener);
    if (index !== -1) this.listeners.splice(index, 1);
  }

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const listeners = this.listeners;
    this.listeners = [];
    // One listener that throws must not keep the others (e.g. undici's cancel) from running.
    let failure: unknown = null;
    for (const listener of listeners) {
      try {
        listener();
      } catch (error) {
        failure ??= error;
      }
    }
    if (failure !== null) throw failure;
  }
}

import { AttemptError, type AttemptErrorCode } from './attempt-error.ts';

/**
 * The abort switch of one upstream attempt: fires when the client leaves, or when the
 * current phase's timer (head, first token, idle) runs out. The abort reason is an
 * AttemptError whose code says which, and undici rejects/destroys with that very reason,
 * so classify-failure sees the code.
 *
 * It is its own abort signal (an AbortSwitch, see there why): undici takes any object with
 * `aborted`, `reason` and add/removeEventListener as a request's `signal`.
 */
export class AttemptAbort extends AbortSwitch {
  declare reason: AttemptError | undefined;
  private timer: NodeJS.Timeout | undefined;
  private timerMs = 0;
  private timeoutCode: AttemptErrorCode = 'AI_LB_HEADERS_TIMEOUT';
  private timeoutMessage = '';
  private readonly onTimeout = () => this.abort(new AttemptError(this.timeoutCode, this.timeoutMessage));
  private readonly onClientAbort = () => this.abort(new AttemptError('AI_LB_CLIENT_ABORT', 'the client closed the connection'));

  constructor(private readonly clientSignal: AbortSignalLike) {
    super();
    if (clientSignal.aborted) this.onClientAbort();
    else clientSignal.addEventListener('abort', this.onClientAbort, { once: true });
  }

  /** What undici is given as `signal` (see the class comment). */
  get signal(): AttemptAbort {
    return this;
  }

  /**
   * Starts (or replaces) the phase timer. The next phase usually has the same duration
   * (head, then body, both REQUEST_TIMEOUT_SECS): the running timer is then restarted
   * rather than replaced — one timer per attempt instead of one per phase.
   */
  arm(ms: number, code: AttemptErrorCode, message: string): void {
    this.timeoutCode = code;
    this.timeoutMessage = message;
    if (this.timer !== undefined && this.timerMs === ms) {
      this.timer.refresh();
      return;
    }
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timerMs = ms;
    this.timer = setTimeout(this.onTimeout, ms);
  }

  /** Restarts the current phase's timer: cheap, called on every chunk of a stream. */
  refresh(): void {
    this.timer?.refresh();
  }

  disarm(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  override abort(reason: AttemptError): void {
    this.disarm();
    super.abort(reason);
  }

  dispose(): void {
    this.disarm();
    this.clientSignal.removeEventListener('abort', this.onClientAbort);
  }
}
