/**
 * Tool calling on the fake's chat completions: a request that offers tools (and does not
 * already carry a tool's result as its last message) is answered with a call to the first
 * tool, or the one tool_choice names, with arguments filled from its schema. The stream
 * sends the call the way OpenAI does: id and name first, the arguments in two pieces.
 */
import type { ServerResponse } from 'node:http';
import { cannedArguments, FAKE_USAGE, sendJson, sseEvent, startEventStream } from './fake-http.ts';

export interface FakeToolCall {
  id: string;
  name: string;
  arguments: Record<string, unknown>;
}

interface ChatBody {
  tools?: Array<{ function?: { name?: unknown; parameters?: unknown } }>;
  tool_choice?: unknown;
  messages?: Array<{ role?: unknown }>;
  stream?: boolean;
  stream_options?: { include_usage?: unknown };
}

/** The call to make for an OpenAI-shaped request (chat or Ollama's /api/chat), or null. */
export function chatToolCall(body: ChatBody, id: string): FakeToolCall | null {
  if (!Array.isArray(body.tools) || body.tools.length === 0 || body.tool_choice === 'none') return null;
  if (body.messages?.at(-1)?.role === 'tool') return null;
  const forced = (body.tool_choice as { function?: { name?: unknown } } | undefined)?.function?.name;
  const tool = body.tools.find((t) => forced === undefined || t.function?.name === forced) ?? body.tools[0];
  const name = tool?.function?.name;
  if (typeof name !== 'string') return null;
  return { id, name, arguments: cannedArguments(tool?.function?.parameters) };
}

export function answerChatToolCall(res: ServerResponse, body: ChatBody, call: FakeToolCall, completionId: string, model: string) {
  const created = Math.floor(Date.now() / 1000);
  const args = JSON.stringify(call.arguments);
  if (!body.stream) {
    sendJson(res, 200, {
      id: completionId,
      object: 'chat.completion',
      created,
      model,
      choices: [
        {
          index: 0,
          message: {
            role: 'assistant',
            content: null,
            tool_calls: [{ id: call.id, type: 'function', function: { name: call.name, arguments: args } }],
          },
          finish_reason: 'tool_calls',
        },
      ],
      usage: FAKE_USAGE,
    });
    return;
  }
  const chunk = (delta: object, finish: string | null = null) => ({
    id: completionId,
    object: 'chat.completion.chunk',
    created,
    model,
    choices: [{ index: 0, delta, finish_reason: finish }],
  });
  const half = Math.ceil(args.length / 2);
  startEventStream(res);
  res.write(
    sseEvent(
      chunk({
        role: 'assistant',
        content: null,
        tool_calls: [{ index: 0, id: call.id, type: 'function', function: { name: call.name, arguments: '' } }],
      }),
    ),
  );
  for (const piece of [args.slice(0, half), args.slice(half)])
    res.write(sseEvent(chunk({ tool_calls: [{ index: 0, function: { arguments: piece } }] })));
  res.write(sseEvent(chunk({}, 'tool_calls')));
  if (body.stream_options?.include_usage === true) res.write(sseEvent({ ...chunk({}), choices: [], usage: FAKE_USAGE }));
  res.end('data: [DONE]\n\n');
}
