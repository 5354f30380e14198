import { AttemptError, type AttemptErrorCode } from './attempt-error.ts';

/**
 * The abort switch of one upstream attempt: fires when the client leaves, or when the
 * current phase's timer (head, first token, idle) runs out. The abort reason is an
 * AttemptError whose code says which, and undici rejects/destroys with that very reason,
 * so classify-failure sees the code.
 */
export class AttemptAbort {
  private readonly controller = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private readonly onClientAbort = () =>
    this.abort(new AttemptError('AI_LB_CLIENT_ABORT', 'the client closed the connection'));

  constructor(private readonly clientSignal: AbortSignal) {
    if (clientSignal.aborted) this.onClientAbort();
    else clientSignal.addEventListener('abort', this.onClientAbort, { once: true });
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Starts (or replaces) the phase timer. */
  arm(ms: number, code: AttemptErrorCode, message: string): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.abort(new AttemptError(code, message)), ms);
  }

  /** Restarts the current phase's timer: cheap, called on every chunk of a stream. */
  refresh(): void {
    this.timer?.refresh();
  }

  disarm(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  abort(reason: AttemptError): void {
    this.disarm();
    if (!this.controller.signal.aborted) this.controller.abort(reason);
  }

  dispose(): void {
    this.disarm();
    this.clientSignal.removeEventListener('abort', this.onClientAbort);
  }
}
