/**
 * The scheduling model of a fake engine, without HTTP: what makes one LLM server faster
 * or slower than another for a given request, in the terms routing can influence.
 *
 *  - `slots` requests decode at once, each at `decodeTokensPerSec`; more wait in a FIFO.
 *  - Before its first token a request prefills the prompt tokens NOT in the prefix cache,
 *    at `prefillTokensPerSec` (prefix-cache.ts).
 *  - A model must be loaded to run (`modelLoadMs`); at most `maxLoadedModels` are, and a
 *    loaded model is evicted (least recently used) only when none of its requests run —
 *    until then the queue waits behind the request that needs the swap, as Ollama does.
 *
 * Time runs on real timers: the HTTP layer turns the callbacks into a stream.
 */
import { blockHashes, PrefixCache, tokensOf } from './prefix-cache.ts';

export interface EngineSimOptions {
  models: string[];
  /** Loaded at start (and after reset); every model of `models` when omitted. */
  loaded?: string[];
  maxLoadedModels?: number;
  modelLoadMs: number;
  slots: number;
  decodeTokensPerSec: number;
  prefillTokensPerSec: number;
  /** KV-cache size in tokens: the prefix cache's capacity and the base of kvCacheUsage. */
  kvCacheTokens: number;
  blockTokens?: number;
}

export interface SimRequest {
  model: string;
  /** The prompt as the engine would tokenise it (serialised messages or the prompt string). */
  promptText: string;
  maxTokens: number;
  /** From a client that bypasses the gateway (counted apart). */
  external: boolean;
  onFirstToken(info: { promptTokens: number; cachedTokens: number }): void;
  /** Called every few ms with tokens decoded since the last call; `done` on the last. */
  onTokens(count: number, done: boolean): void;
}

export interface EngineStats {
  requests: number;
  completed: number;
  promptTokens: number;
  cachedTokens: number;
  modelLoads: number;
  external: { requests: number; promptTokens: number; cachedTokens: number };
}

interface Running {
  request: SimRequest;
  tokens: number;
  timer: NodeJS.Timeout | undefined;
  cancelled: boolean;
}

/** How often a decoding request reports tokens (the stream's chunk rate). */
const DECODE_TICK_MS = 25;

export class EngineSim {
  private readonly queue: SimRequest[] = [];
  private readonly running = new Set<Running>();
  /** Model -> last use (recency); a Map keeps insertion order for the LRU eviction. */
  private loaded = new Map<string, number>();
  private loading: string | null = null;
  private loadTimer: NodeJS.Timeout | undefined;
  private cache: PrefixCache;
  stats: EngineStats = emptyStats();

  constructor(readonly options: EngineSimOptions) {
    const blockTokens = options.blockTokens ?? 64;
    this.cache = new PrefixCache(Math.max(1, Math.floor(options.kvCacheTokens / blockTokens)), blockTokens);
    this.reset();
  }

  /** Queues a request; returns a cancel function (client gone: frees its slot or place). */
  submit(request: SimRequest): () => void {
    this.stats.requests++;
    if (request.external) this.stats.external.requests++;
    this.queue.push(request);
    this.pump();
    return () => this.cancel(request);
  }

  get runningCount(): number {
    return this.running.size;
  }

  get waitingCount(): number {
    return this.queue.length;
  }

  /** Tokens held by running requests over the KV cache's size. */
  get kvCacheUsage(): number {
    let tokens = 0;
    for (const r of this.running) tokens += tokensOf(r.request.promptText) + r.tokens;
    return Math.min(1, tokens / this.options.kvCacheTokens);
  }

  get loadedModels(): string[] {
    return [...this.loaded.keys()];
  }

  /** The model being loaded now, if any. */
  get loadingModel(): string | null {
    return this.loading;
  }

  /** Back to the starting state: caches cleared, initial models loaded, stats zeroed. */
  reset(): void {
    for (const r of this.running) this.stop(r);
    this.running.clear();
    this.queue.length = 0;
    clearTimeout(this.loadTimer);
    this.loading = null;
    this.loaded = new Map((this.options.loaded ?? this.options.models).map((m, i) => [m, i]));
    this.cache.clear();
    this.stats = emptyStats();
  }

  private pump(): void {
    while (this.queue.length > 0 && this.running.size < this.options.slots) {
      const head = this.queue[0];
      if (!this.loaded.has(head.model)) {
        this.startLoad(head.model);
        return; // FIFO: nothing overtakes the request that waits for its model
      }
      this.queue.shift();
      this.start(head);
    }
  }

  private startLoad(model: string): void {
    if (this.loading !== null) return;
    const max = this.options.maxLoadedModels ?? this.options.models.length;
    if (this.loaded.size >= max) {
      const busy = new Set([...this.running].map((r) => r.request.model));
      const idle = [...this.loaded.entries()].filter(([m]) => !busy.has(m)).sort((a, b) => a[1] - b[1]);
      if (idle.length === 0) return; // wait until a loaded model's requests finish
      this.loaded.delete(idle[0][0]);
    }
    this.loading = model;
    this.stats.modelLoads++;
    this.loadTimer = setTimeout(() => {
      this.loading = null;
      this.loaded.set(model, performance.now());
      this.pump();
    }, this.options.modelLoadMs);
  }

  private start(request: SimRequest): void {
    this.loaded.set(request.model, performance.now());
    const entry: Running = { request, tokens: 0, timer: undefined, cancelled: false };
    this.running.add(entry);
    const hashes = blockHashes(request.promptText, this.cache.blockTokens);
    const promptTokens = tokensOf(request.promptText);
    const cachedTokens = Math.min(promptTokens, this.cache.lookup(hashes));
    this.count(request, promptTokens, cachedTokens);
    const prefillMs = ((promptTokens - cachedTokens) / this.options.prefillTokensPerSec) * 1000;
    entry.timer = setTimeout(() => {
      this.cache.insert(hashes);
      request.onFirstToken({ promptTokens, cachedTokens });
      this.decode(entry);
    }, prefillMs);
  }

  private decode(entry: Running): void {
    const perTick = (this.options.decodeTokensPerSec * DECODE_TICK_MS) / 1000;
    let owed = 0;
    const step = () => {
      if (entry.cancelled) return;
      owed += perTick;
      const count = Math.min(Math.floor(owed), entry.request.maxTokens - entry.tokens);
      owed -= count;
      entry.tokens += count;
      const done = entry.tokens >= entry.request.maxTokens;
      if (count > 0 || done) entry.request.onTokens(count, done);
      if (done) return this.finish(entry);
      entry.timer = setTimeout(step, DECODE_TICK_MS);
    };
    step();
  }

  private finish(entry: Running): void {
    this.running.delete(entry);
    this.stats.completed++;
    this.pump();
  }

  private cancel(request: SimRequest): void {
    const queued = this.queue.indexOf(request);
    if (queued >= 0) this.queue.splice(queued, 1);
    for (const r of this.running) if (r.request === request) this.stop(r);
    this.pump();
  }

  private stop(entry: Running): void {
    entry.cancelled = true;
    clearTimeout(entry.timer);
    this.running.delete(entry);
  }

  private count(request: SimRequest, promptTokens: number, cachedTokens: number): void {
    this.stats.promptTokens += promptTokens;
    this.stats.cachedTokens += cachedTokens;
    if (!request.external) return;
    this.stats.external.promptTokens += promptTokens;
    this.stats.external.cachedTokens += cachedTokens;
  }
}

function emptyStats(): EngineStats {
  return {
    requests: 0,
    completed: 0,
    promptTokens: 0,
    cachedTokens: 0,
    modelLoads: 0,
    external: { requests: 0, promptTokens: 0, cachedTokens: 0 },
  };
}
