/**
 * The OpenAI Responses API on the fake (platform.openai.com/docs/api-reference/responses):
 * POST /v1/responses (JSON, or typed SSE events with `event:` lines and sequence_number),
 * GET and DELETE /v1/responses/{id}, POST /v1/responses/{id}/cancel, previous_response_id.
 *
 * Responses are kept per process, as on the real servers: a follow-up or by-id call that
 * reaches another node finds nothing there (404), which is what the gateway's
 * response-to-node memory exists for. Ollama and llama.cpp answer statelessly and refuse
 * previous_response_id with 400. Answer ids name the process, so a test can tell which
 * node answered.
 */
import type { ServerFakeKind } from './fake-kinds.ts';
import { cannedArguments, FAKE_TEXT, json, sseEvent, sseStream, type FakeAnswer } from './fake-http.ts';
import type { FakeEndpoint } from './fake-surfaces.ts';

type Json = Record<string, unknown>;

const STATELESS: ReadonlySet<ServerFakeKind> = new Set(['ollama', 'llamacpp']);
const stored = new Map<string, Json>();
let counter = 0;

export function answerResponses(kind: ServerFakeKind, endpoint: FakeEndpoint, body: Json, model: string): FakeAnswer {
  if (endpoint.key !== 'POST /v1/responses') return byId(endpoint);
  const previous = typeof body.previous_response_id === 'string' ? body.previous_response_id : null;
  if (previous !== null && STATELESS.has(kind))
    return error(400, 'previous_response_id is not supported: this server does not store responses', 'previous_response_id');
  if (previous !== null && !stored.has(previous)) {
    return error(404, `Previous response with id '${previous}' not found.`, 'previous_response_id', 'previous_response_not_found');
  }
  const id = `resp_${process.pid}_${++counter}`;
  const response = buildResponse(id, model, body, previous);
  if (body.store !== false && !STATELESS.has(kind)) stored.set(id, response);
  return body.stream === true ? sseStream(streamEvents(response)) : json(response);
}

/** Whether this process keeps a response with that id (a by-id call for anything else is a 404). */
export function hasStoredResponse(id: string | undefined): boolean {
  return id !== undefined && stored.has(id);
}

function byId(endpoint: FakeEndpoint): FakeAnswer {
  const id = endpoint.id ?? '';
  const response = stored.get(id);
  if (!response) return error(404, `Response with id '${id}' not found.`, null);
  if (endpoint.key === 'DELETE /v1/responses/{id}') {
    stored.delete(id);
    return json({ id, object: 'response', deleted: true });
  }
  if (endpoint.key === 'POST /v1/responses/{id}/cancel') {
    if (response.background !== true) return error(400, 'Only responses created with background=true can be cancelled.', null);
    response.status = 'cancelled';
  }
  return json(response);
}

function buildResponse(id: string, model: string, body: Json, previous: string | null): Json {
  const background = body.background === true;
  const call = toolCall(body);
  const text = previous ? `${FAKE_TEXT} again` : FAKE_TEXT;
  const output = background
    ? []
    : [
        call
          ? {
              type: 'function_call',
              id: `fc_${id}`,
              call_id: `call_${id}`,
              name: call.name,
              arguments: JSON.stringify(call.args),
              status: 'completed',
            }
          : {
              type: 'message',
              id: `msg_${id}`,
              status: 'completed',
              role: 'assistant',
              content: [{ type: 'output_text', text, annotations: [] }],
            },
      ];
  return {
    id,
    object: 'response',
    created_at: Math.floor(Date.now() / 1000),
    status: background ? 'in_progress' : 'completed',
    background,
    error: null,
    incomplete_details: null,
    instructions: typeof body.instructions === 'string' ? body.instructions : null,
    max_output_tokens: typeof body.max_output_tokens === 'number' ? body.max_output_tokens : null,
    model,
    output,
    parallel_tool_calls: true,
    previous_response_id: previous,
    store: body.store !== false,
    temperature: 1,
    text: { format: { type: 'text' } },
    tool_choice: 'auto',
    tools: Array.isArray(body.tools) ? body.tools : [],
    top_p: 1,
    truncation: 'disabled',
    usage: {
      input_tokens: 5,
      input_tokens_details: { cached_tokens: 0 },
      output_tokens: 3,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: 8,
    },
    metadata: {},
  };
}

/** A function tool offered, unless the input already ends with a tool's output. */
function toolCall(body: Json): { name: string; args: Json } | null {
  const tools = Array.isArray(body.tools) ? (body.tools as Json[]) : [];
  const fn = tools.find((tool) => tool.type === 'function' && typeof tool.name === 'string');
  if (!fn || body.tool_choice === 'none') return null;
  const last = Array.isArray(body.input) ? (body.input.at(-1) as Json | undefined) : undefined;
  if (last?.type === 'function_call_output') return null;
  return { name: fn.name as string, args: cannedArguments(fn.parameters) };
}

/** The typed event sequence of a streamed response, as OpenAI sends it. */
function streamEvents(response: Json): string[] {
  let sequence = 0;
  const events: string[] = [];
  const emit = (type: string, data: Json) => events.push(sseEvent({ type, sequence_number: sequence++, ...data }, type));
  const inProgress = { ...response, status: 'in_progress', output: [], usage: null };
  emit('response.created', { response: inProgress });
  emit('response.in_progress', { response: inProgress });
  (response.output as Json[]).forEach((item, outputIndex) => {
    const itemId = item.id as string;
    if (item.type === 'function_call') {
      emit('response.output_item.added', { output_index: outputIndex, item: { ...item, arguments: '', status: 'in_progress' } });
      emit('response.function_call_arguments.delta', { item_id: itemId, output_index: outputIndex, delta: item.arguments });
      emit('response.function_call_arguments.done', { item_id: itemId, output_index: outputIndex, arguments: item.arguments });
    } else {
      const text = ((item.content as Json[])[0]!.text as string) ?? '';
      const where = { item_id: itemId, output_index: outputIndex, content_index: 0 };
      emit('response.output_item.added', { output_index: outputIndex, item: { ...item, status: 'in_progress', content: [] } });
      emit('response.content_part.added', { ...where, part: { type: 'output_text', text: '', annotations: [] } });
      for (const piece of text.match(/\s*\S+/g) ?? []) emit('response.output_text.delta', { ...where, delta: piece, logprobs: [] });
      emit('response.output_text.done', { ...where, text, logprobs: [] });
      emit('response.content_part.done', { ...where, part: { type: 'output_text', text, annotations: [] } });
    }
    emit('response.output_item.done', { output_index: outputIndex, item });
  });
  emit('response.completed', { response });
  return events;
}

function error(status: number, message: string, param: string | null, code: string | null = null): FakeAnswer {
  return json({ error: { message, type: 'invalid_request_error', param, code } }, status);
}
