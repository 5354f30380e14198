import { AbortSwitch, type AbortSignalLike } from '../http/abort-switch.ts';
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
   * rather than replaced — one timer per attempt instead of one per phase (issue 6).
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
