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
 * A one-shot abort signal and its trigger in one small object. Every request had two
 * AbortControllers (the client's and the attempt's); creating their AbortSignals and
 * adding/removing EventTarget listeners measured ≈ 3–4 % of the gateway's busy time
 * (issue 6). A request has one to three listeners, held in an array; every listener is
 * called once, as with `{ once: true }`.
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
