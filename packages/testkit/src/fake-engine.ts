/**
 * A fake LLM engine that behaves like a real one in what matters for routing, run as its
 * own process by the routing benchmark and by tests:
 *
 *   node --import tsx fake-engine.ts --config '{"kind":"vllm","models":["m"],"slots":4,…}'
 *
 * prints {"port":N,"pid":P} on its first stdout line when it listens. The scheduling model
 * (slots, FIFO queue, prefill of uncached prompt tokens, model loads) is fake-engine-sim.ts;
 * what it answers on discovery and load endpoints per kind is fake-engine-routes.ts. It
 * serves OpenAI POST /v1/chat/completions and /v1/completions, stream and not.
 *
 * Control surface (tests and the bench):
 *   GET  /__engine/stats    EngineStats plus the live queue, the loaded models and the one loading
 *   POST /__engine/reset    caches cleared, initial models loaded, stats zeroed
 *   POST /__engine/config   {"fault": "hang"|"garbage"|"negative"|"nan"|"absurd"|null}: load endpoints misbehave
 * A request with the header `x-fake-external: 1` is counted as outside load.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { parseArgs } from 'node:util';
import { EngineSim, type EngineSimOptions } from './fake-engine-sim.ts';
import { engineResponse, LOAD_FAULTS, type EngineKind, type EngineView, type LoadFault } from './fake-engine-routes.ts';

export interface FakeEngineOptions extends EngineSimOptions {
  kind: EngineKind;
  /** llama.cpp only: started with --metrics (default true). */
  llamacppMetrics?: boolean;
}

interface ChatBody {
  model?: unknown;
  messages?: unknown;
  prompt?: unknown;
  stream?: unknown;
  max_tokens?: unknown;
  max_completion_tokens?: unknown;
}

const DEFAULT_MAX_TOKENS = 16;
/** What every fake token reads as: 4 characters, like the prompt's token estimate. */
const TOKEN_TEXT = 'tok ';

export function createFakeEngine(options: FakeEngineOptions) {
  const sim = new EngineSim(options);
  const view: EngineView = { kind: options.kind, sim, slots: options.slots, llamacppMetrics: options.llamacppMetrics ?? true, fault: null };

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: String(error), type: 'server_error' } }));
    });
  });
  server.keepAliveTimeout = 30_000;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    if (path.startsWith('/__engine/')) return control(path, req, res);
    if (req.method === 'POST' && (path === '/v1/chat/completions' || path === '/v1/completions')) return infer(path, req, res);
    const answer = req.method === 'GET' ? engineResponse(view, path) : undefined;
    if (answer === undefined) return sendJson(res, 404, { error: { message: `no route ${req.method} ${path}`, type: 'not_found_error' } });
    if (answer.delayMs) await new Promise((resolve) => setTimeout(resolve, answer.delayMs).unref());
    res.writeHead(answer.status, { 'content-type': answer.contentType });
    res.end(answer.body);
  }

  async function control(path: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (path === '/__engine/stats') {
      return sendJson(res, 200, {
        ...sim.stats,
        running: sim.runningCount,
        waiting: sim.waitingCount,
        loadedModels: sim.loadedModels,
        loading: sim.loadingModel,
      });
    }
    if (path === '/__engine/reset' && req.method === 'POST') {
      sim.reset();
      view.fault = null;
      return void res.writeHead(204).end();
    }
    if (path === '/__engine/config' && req.method === 'POST') {
      const body = JSON.parse((await readBody(req)) || '{}') as { fault?: LoadFault | null };
      if (body.fault !== undefined && body.fault !== null && !LOAD_FAULTS.includes(body.fault)) {
        return sendJson(res, 400, { error: { message: `fault must be one of ${LOAD_FAULTS.join(', ')} or null` } });
      }
      if (body.fault !== undefined) view.fault = body.fault;
      return void res.writeHead(204).end();
    }
    sendJson(res, 404, { error: { message: `no control route ${path}` } });
  }

  async function infer(path: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    let body: ChatBody;
    try {
      body = JSON.parse(await readBody(req)) as ChatBody;
    } catch {
      return sendJson(res, 400, { error: { message: 'body is not JSON', type: 'invalid_request_error' } });
    }
    const model = typeof body.model === 'string' ? body.model : '';
    if (!options.models.includes(model)) {
      return sendJson(res, 404, {
        error: { message: `model '${model}' not found`, type: 'invalid_request_error', code: 'model_not_found' },
      });
    }
    const chat = path === '/v1/chat/completions';
    const promptText = chat ? serializeMessages(body.messages) : typeof body.prompt === 'string' ? body.prompt : '';
    const maxTokens = positive(body.max_completion_tokens) ?? positive(body.max_tokens) ?? DEFAULT_MAX_TOKENS;
    const reply = new Reply(res, model, chat, body.stream === true);
    const cancel = sim.submit({
      model,
      promptText,
      maxTokens,
      external: req.headers['x-fake-external'] === '1',
      onFirstToken: (info) => reply.start(info),
      onTokens: (count, done) => reply.tokens(count, done),
    });
    res.once('close', () => {
      if (!reply.finished) cancel();
    });
  }

  return { server, sim, view };
}

/** One answer, streamed as the engine produces tokens or sent whole at the end. */
class Reply {
  finished = false;
  private text = '';
  private usage = { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0, prompt_tokens_details: { cached_tokens: 0 } };
  private readonly id = `cmpl-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;

  constructor(
    private readonly res: ServerResponse,
    private readonly model: string,
    private readonly chat: boolean,
    private readonly stream: boolean,
  ) {}

  start({ promptTokens, cachedTokens }: { promptTokens: number; cachedTokens: number }): void {
    this.usage.prompt_tokens = promptTokens;
    this.usage.prompt_tokens_details.cached_tokens = cachedTokens;
    if (!this.stream) return;
    this.res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    // The first event carries the role, as vLLM's does: the client's time to first token.
    this.event(this.chat ? { role: 'assistant', content: '' } : '', null);
  }

  tokens(count: number, done: boolean): void {
    const piece = TOKEN_TEXT.repeat(count);
    this.text += piece;
    this.usage.completion_tokens += count;
    this.usage.total_tokens = this.usage.prompt_tokens + this.usage.completion_tokens;
    if (this.stream && count > 0) this.event(this.chat ? { content: piece } : piece, null);
    if (!done) return;
    this.finished = true;
    if (this.stream) {
      this.event(this.chat ? {} : '', 'length');
      this.res.write(
        `data: ${JSON.stringify({ id: this.id, object: this.object(), model: this.model, choices: [], usage: this.usage })}\n\n`,
      );
      this.res.end('data: [DONE]\n\n');
      return;
    }
    const choice = this.chat
      ? { index: 0, message: { role: 'assistant', content: this.text }, finish_reason: 'length' }
      : { index: 0, text: this.text, finish_reason: 'length' };
    sendJson(this.res, 200, {
      id: this.id,
      object: this.chat ? 'chat.completion' : 'text_completion',
      model: this.model,
      choices: [choice],
      usage: this.usage,
    });
  }

  private object(): string {
    return this.chat ? 'chat.completion.chunk' : 'text_completion';
  }

  private event(delta: object | string, finishReason: string | null): void {
    const choice =
      typeof delta === 'string' ? { index: 0, text: delta, finish_reason: finishReason } : { index: 0, delta, finish_reason: finishReason };
    this.res.write(`data: ${JSON.stringify({ id: this.id, object: this.object(), created: 0, model: this.model, choices: [choice] })}\n\n`);
  }
}

/** The prompt as a chat template would lay it out: role and content of each message in order. */
export function serializeMessages(messages: unknown): string {
  if (!Array.isArray(messages)) return '';
  return messages
    .map((m) => {
      const message = (m ?? {}) as { role?: unknown; content?: unknown };
      const content = typeof message.content === 'string' ? message.content : JSON.stringify(message.content ?? '');
      return `<|${String(message.role)}|>${content}\n`;
    })
    .join('');
}

function positive(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 ? value : undefined;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(value));
}

function main(): void {
  const { values } = parseArgs({
    options: { config: { type: 'string' }, host: { type: 'string', default: '127.0.0.1' }, port: { type: 'string', default: '0' } },
  });
  const options = JSON.parse(values.config ?? '{}') as FakeEngineOptions;
  const { server } = createFakeEngine(options);
  server.listen(Number(values.port), values.host, () => {
    const { port } = server.address() as { port: number };
    process.stdout.write(`${JSON.stringify({ port, pid: process.pid })}\n`);
  });
  process.on('SIGTERM', () => process.exit(0));
}

if (import.meta.url === `file://${process.argv[1]}`) main();
