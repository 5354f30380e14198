/**
 * Anthropic's Messages API as the servers that serve it natively answer it (vLLM, llama.cpp,
 * Ollama, LM Studio): POST /v1/messages, JSON or the event stream (message_start,
 * content_block_*, message_delta, message_stop), tool use, and POST /v1/messages/count_tokens
 * (vLLM, llama.cpp). Errors are Anthropic's {"type":"error","error":{…}}.
 */
import { cannedArguments, FAKE_PIECES, FAKE_TEXT, json, sseEvent, sseStream, type FakeAnswer } from './fake-http.ts';
import type { FakeEndpoint } from './fake-surfaces.ts';

type Json = Record<string, unknown>;

let counter = 0;

export function answerMessages(endpoint: FakeEndpoint, body: Json, model: string): FakeAnswer {
  if (endpoint.key === 'POST /v1/messages/count_tokens') {
    const counted = JSON.stringify([body.system ?? '', body.messages ?? [], body.tools ?? []]);
    return json({ input_tokens: Math.ceil(counted.length / 4) });
  }
  const id = `msg_${process.pid}_${++counter}`;
  const call = toolUse(body, id);
  const content = call ? [call] : [{ type: 'text', text: FAKE_TEXT }];
  const stopReason = call ? 'tool_use' : 'end_turn';
  const usage = { input_tokens: 5, output_tokens: 3 };
  if (body.stream !== true) {
    return json({ id, type: 'message', role: 'assistant', model, content, stop_reason: stopReason, stop_sequence: null, usage });
  }
  const events: string[] = [];
  const emit = (type: string, data: Json) => events.push(sseEvent({ type, ...data }, type));
  emit('message_start', {
    message: {
      id,
      type: 'message',
      role: 'assistant',
      model,
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: { input_tokens: 5, output_tokens: 1 },
    },
  });
  if (call) {
    emit('content_block_start', { index: 0, content_block: { ...call, input: {} } });
    const args = JSON.stringify(call.input);
    const half = Math.ceil(args.length / 2);
    for (const piece of [args.slice(0, half), args.slice(half)])
      emit('content_block_delta', { index: 0, delta: { type: 'input_json_delta', partial_json: piece } });
  } else {
    emit('content_block_start', { index: 0, content_block: { type: 'text', text: '' } });
    for (const piece of FAKE_PIECES) emit('content_block_delta', { index: 0, delta: { type: 'text_delta', text: piece } });
  }
  emit('content_block_stop', { index: 0 });
  emit('message_delta', { delta: { stop_reason: stopReason, stop_sequence: null }, usage: { output_tokens: 3 } });
  emit('message_stop', {});
  return sseStream(events);
}

/** A call to the first tool offered (or the one tool_choice names), unless the last turn returns a tool result. */
function toolUse(body: Json, id: string): Json | null {
  const tools = Array.isArray(body.tools) ? (body.tools as Json[]) : [];
  const choice = body.tool_choice as { type?: unknown; name?: unknown } | undefined;
  if (tools.length === 0 || choice?.type === 'none') return null;
  const last = Array.isArray(body.messages) ? (body.messages.at(-1) as Json | undefined) : undefined;
  if (Array.isArray(last?.content) && last.content.some((block: Json) => block?.type === 'tool_result')) return null;
  const tool = tools.find((t) => choice?.type !== 'tool' || t.name === choice.name) ?? tools[0]!;
  return { type: 'tool_use', id: `toolu_${id}`, name: tool.name, input: cannedArguments(tool.input_schema) };
}
