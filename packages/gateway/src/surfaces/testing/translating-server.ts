/**
 * Test-only: a bare HTTP server that serves /v1/messages and Ollama's /api/* from one
 * OpenAI-only upstream through the surface translators, the way the gateway's pipeline will
 * (translate the request, forward, translate the answer or pipe the stream through the
 * translator, render errors in the surface's format). It lets the official clients prove
 * the translated shapes now; routing, caps and failover are the pipeline's, not here.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { GatewayError } from '@ai-lb/shared';
import { ERROR_RENDERERS } from '../../http/error-formats.ts';
import { UpstreamAnswerError } from '../upstream-answer-error.ts';
import { estimateCountTokens, ESTIMATE_HEADER, ESTIMATE_HEADER_VALUE } from '../anthropic/count-tokens.ts';
import { messagesToChatRequest } from '../anthropic/request.ts';
import { chatCompletionToMessage } from '../anthropic/response.ts';
import { MessagesStreamTranslator } from '../anthropic/stream.ts';
import { aggregateTags, syntheticShow } from '../ollama/aggregate.ts';
import {
  ollamaChatToChatRequest,
  ollamaEmbeddingsToEmbeddingsRequest,
  ollamaEmbedToEmbeddingsRequest,
  ollamaGenerateToUpstream,
  type TranslatedOllamaRequest,
} from '../ollama/request.ts';
import {
  chatCompletionToOllamaChat,
  completionToOllamaGenerate,
  embeddingsToOllamaEmbed,
  embeddingsToOllamaEmbeddings,
} from '../ollama/response.ts';
import { OllamaStreamTranslator } from '../ollama/stream.ts';

type Surface = 'anthropic' | 'ollama';

export interface TranslatingServer {
  url: string;
  close(): Promise<void>;
}

export async function startTranslatingServer(upstreamUrl: string): Promise<TranslatingServer> {
  const server = createServer((req, res) => {
    const surface: Surface = (req.url ?? '').startsWith('/api/') ? 'ollama' : 'anthropic';
    handle(upstreamUrl, req, res).catch((error: unknown) => sendError(res, surface, error));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function handle(upstreamUrl: string, req: IncomingMessage, res: ServerResponse) {
  const path = (req.url ?? '/').split('?')[0];
  if (req.method === 'GET' && path === '/api/tags') {
    const models = (await upstreamJson(upstreamUrl, 'GET', '/v1/models')) as { data: Array<{ id: string }> };
    return sendJson(res, 200, aggregateTags([{ modelIds: models.data.map((m) => m.id), seenAtMs: 0 }]));
  }
  if (req.method === 'GET' && path === '/api/ps') return sendJson(res, 200, { models: [] });
  if (req.method === 'GET' && path === '/api/version') return sendJson(res, 200, { version: '0.6.8' });
  const body = await readJson(req);
  const startedAtMs = Date.now();
  const timing = { startedAtMs, clock: Date.now };
  switch (path) {
    case '/v1/messages': {
      const { chat, stopSequences, stream } = messagesToChatRequest(body, { acceptsTopK: false });
      const options = { model: chat.model, stopSequences };
      if (!stream)
        return sendJson(res, 200, chatCompletionToMessage(await upstreamJson(upstreamUrl, 'POST', '/v1/chat/completions', chat), options));
      const translator = new MessagesStreamTranslator(options);
      return pipeStream(upstreamUrl, '/v1/chat/completions', chat, res, 'text/event-stream', translator, (m) =>
        translator.fail('api_error', m),
      );
    }
    case '/v1/messages/count_tokens':
      res.setHeader(ESTIMATE_HEADER, ESTIMATE_HEADER_VALUE);
      return sendJson(res, 200, estimateCountTokens(body));
    case '/api/chat':
    case '/api/generate': {
      const translated =
        path === '/api/chat'
          ? ollamaChatToChatRequest(body, { acceptsTopK: false })
          : ollamaGenerateToUpstream(body, { acceptsTopK: false });
      const model = translated.body.model as string;
      if (!translated.stream) {
        const answer = await upstreamJson(upstreamUrl, 'POST', translated.path, translated.body);
        return sendJson(
          res,
          200,
          path === '/api/chat' ? chatCompletionToOllamaChat(answer, model, timing) : completionToOllamaGenerate(answer, model, timing),
        );
      }
      const translator = new OllamaStreamTranslator({ model, mode: path === '/api/chat' ? 'chat' : 'generate', timing });
      return pipeStream(upstreamUrl, translated.path, translated.body, res, 'application/x-ndjson', translator, (m) => translator.fail(m));
    }
    case '/api/embed':
    case '/api/embeddings': {
      const translated: TranslatedOllamaRequest =
        path === '/api/embed' ? ollamaEmbedToEmbeddingsRequest(body) : ollamaEmbeddingsToEmbeddingsRequest(body);
      const answer = await upstreamJson(upstreamUrl, 'POST', translated.path, translated.body);
      return sendJson(
        res,
        200,
        path === '/api/embed'
          ? embeddingsToOllamaEmbed(answer, translated.body.model as string, timing)
          : embeddingsToOllamaEmbeddings(answer),
      );
    }
    case '/api/show':
      return sendJson(res, 200, syntheticShow(String((body as { model?: unknown }).model ?? ''), 0));
    default:
      throw new GatewayError('route_not_found', `no route for ${req.method} ${path}`);
  }
}

interface Translator {
  push(chunk: unknown): string;
  finish(): string;
}

/** Upstream SSE -> translator -> client, event by event; a broken upstream ends the stream with the surface's error. */
async function pipeStream(
  upstreamUrl: string,
  path: string,
  body: unknown,
  res: ServerResponse,
  contentType: string,
  translator: Translator,
  fail: (message: string) => string,
) {
  const upstream = await request(`${upstreamUrl}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (upstream.statusCode !== 200) throw await upstreamError(upstream.statusCode, await upstream.body.text());
  res.writeHead(200, { 'content-type': contentType });
  let pending = '';
  try {
    for await (const piece of upstream.body) {
      pending += (piece as Buffer).toString('utf8');
      let end = pending.indexOf('\n\n');
      while (end >= 0) {
        const data = pending
          .slice(0, end)
          .split('\n')
          .filter((line) => line.startsWith('data:'))
          .map((line) => line.slice(5).trim())
          .join('');
        pending = pending.slice(end + 2);
        if (data === '[DONE]') res.write(translator.finish());
        else if (data !== '') res.write(translator.push(JSON.parse(data)));
        end = pending.indexOf('\n\n');
      }
    }
    res.end(translator.finish());
  } catch {
    res.end(fail('the upstream connection broke mid-stream'));
  }
}

async function upstreamJson(upstreamUrl: string, method: 'GET' | 'POST', path: string, body?: unknown): Promise<unknown> {
  const upstream = await request(`${upstreamUrl}${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await upstream.body.text();
  if (upstream.statusCode !== 200) throw await upstreamError(upstream.statusCode, text);
  return JSON.parse(text) as unknown;
}

async function upstreamError(status: number, text: string): Promise<GatewayError> {
  let message = text;
  try {
    message = (JSON.parse(text) as { error?: { message?: string } }).error?.message ?? text;
  } catch {
    // not JSON: the text is the message
  }
  return new GatewayError('upstream_error', message, { status });
}

function sendError(res: ServerResponse, surface: Surface, error: unknown) {
  if (res.headersSent) return void res.end();
  const known =
    error instanceof GatewayError
      ? error
      : error instanceof UpstreamAnswerError
        ? new GatewayError('upstream_failed', error.message)
        : new GatewayError('internal_error', error instanceof Error ? error.message : String(error));
  const renderer = ERROR_RENDERERS[surface];
  res.writeHead(known.status, { 'content-type': renderer.contentType });
  res.end(renderer.body(known));
}

function sendJson(res: ServerResponse, status: number, value: unknown) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(value));
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  if (text === '') return {};
  try {
    return JSON.parse(text) as unknown;
  } catch (cause) {
    throw new GatewayError('invalid_json', 'the body is not valid JSON', { cause });
  }
}
