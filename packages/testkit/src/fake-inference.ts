/**
 * How the fake server answers POST /v1/chat/completions and /v1/embeddings. Faults are
 * chosen by the request's model name so one server can play many failure cases.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FakeServerOptions, FakeServerStats } from './fake-llm-server.ts';

interface Context {
  options: FakeServerOptions;
  stats: FakeServerStats;
}

export async function handleInference(req: IncomingMessage, res: ServerResponse, { options, stats }: Context) {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const body = JSON.parse(Buffer.concat(chunks).toString() || '{}') as { model?: string; stream?: boolean };
  const model = body.model ?? '';
  const path = (req.url ?? '/').split('?')[0];
  stats.requests++;
  stats.byModel[model] = (stats.byModel[model] ?? 0) + 1;
  if (req.headers.authorization) stats.authorizations.push(req.headers.authorization);
  if (typeof req.headers['x-request-id'] === 'string') stats.requestIds.push(req.headers['x-request-id']);
  stats.inflight++;
  stats.peakInflight = Math.max(stats.peakInflight, stats.inflight);
  let done = false;
  res.once('close', () => {
    if (!done) stats.aborted++;
    stats.inflight--;
  });
  if (options.latencyMs > 0) await new Promise((r) => setTimeout(r, options.latencyMs));

  if (path.endsWith('/embeddings')) {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        object: 'list',
        data: [{ object: 'embedding', index: 0, embedding: [0.1, 0.2, 0.3] }],
        model,
        usage: { prompt_tokens: 3, total_tokens: 3 },
      }),
    );
    done = true;
    return;
  }
  const id = `chatcmpl-${process.pid}-${stats.requests}`;
  if (body.stream) {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    for (const piece of ['Hello', ' from', ' fake']) {
      res.write(`data: ${JSON.stringify(chunk(id, model, { content: piece }, null))}\n\n`);
    }
    res.write(`data: ${JSON.stringify(chunk(id, model, {}, 'stop'))}\n\n`);
    res.end('data: [DONE]\n\n');
    done = true;
    return;
  }
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(
    JSON.stringify({
      id,
      object: 'chat.completion',
      created: Math.floor(Date.now() / 1000),
      model,
      choices: [{ index: 0, message: { role: 'assistant', content: 'Hello from fake' }, finish_reason: 'stop' }],
      usage: { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 },
    }),
  );
  done = true;
}

function chunk(id: string, model: string, delta: object, finishReason: string | null) {
  return {
    id,
    object: 'chat.completion.chunk',
    created: Math.floor(Date.now() / 1000),
    model,
    choices: [{ index: 0, delta, finish_reason: finishReason }],
  };
}
