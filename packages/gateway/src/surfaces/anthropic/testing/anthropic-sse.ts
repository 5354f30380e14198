/**
 * Test helpers: Anthropic SSE text -> events, a check that the event sequence is well formed,
 * and the Message the events add up to (what the SDK's MessageStream accumulates).
 */
import type { AnthropicContentBlock, AnthropicMessage } from '../anthropic-types.ts';

export interface SseEvent {
  event: string;
  data: Record<string, unknown>;
}

export function parseAnthropicSse(text: string): SseEvent[] {
  return text
    .split('\n\n')
    .filter((block) => block.trim() !== '')
    .map((block) => {
      const lines = block.split('\n');
      const event = lines.find((line) => line.startsWith('event: '))?.slice(7);
      const data = lines.find((line) => line.startsWith('data: '))?.slice(6);
      if (event === undefined || data === undefined) throw new Error(`malformed SSE block: ${block}`);
      const parsed = JSON.parse(data) as Record<string, unknown>;
      if (parsed.type !== event) throw new Error(`event "${event}" carries data of type "${String(parsed.type)}"`);
      return { event, data: parsed };
    });
}

/** Throws with the reason when the sequence is not one Anthropic's API could have sent. */
export function assertWellFormed(events: SseEvent[]): void {
  const fail = (why: string, i: number) => {
    throw new Error(`event ${i} (${events[i]?.event}): ${why}\n${events.map((e) => JSON.stringify(e.data)).join('\n')}`);
  };
  if (events[0]?.event !== 'message_start') fail('the stream must begin with message_start', 0);
  let open: { index: number; type: string } | null = null;
  let nextIndex = 0;
  let deltaSeen = false;
  events.forEach(({ event, data }, i) => {
    if (i === 0) return;
    if (deltaSeen && event !== 'message_stop') fail('only message_stop may follow message_delta', i);
    if (event === 'content_block_start') {
      if (open) fail('a block started while another was open', i);
      if (data.index !== nextIndex) fail(`expected index ${nextIndex}`, i);
      open = { index: nextIndex++, type: (data.content_block as { type: string }).type };
    } else if (event === 'content_block_delta') {
      if (!open || data.index !== open.index) fail('a delta outside its open block', i);
      const want = { text: 'text_delta', thinking: 'thinking_delta', tool_use: 'input_json_delta' }[open!.type];
      if ((data.delta as { type: string }).type !== want) fail(`a ${open!.type} block got a ${(data.delta as { type: string }).type}`, i);
    } else if (event === 'content_block_stop') {
      if (!open || data.index !== open.index) fail('a stop for a block that is not open', i);
      open = null;
    } else if (event === 'message_delta') {
      if (open) fail('message_delta while a block is open', i);
      deltaSeen = true;
    } else if (event === 'message_stop') {
      if (!deltaSeen || i !== events.length - 1) fail('message_stop must follow message_delta and end the stream', i);
    } else if (event !== 'error' || i !== events.length - 1) {
      fail('unexpected event', i);
    }
  });
}

/** What the events add up to, as the SDK accumulates it (input JSON parsed at the end). */
export function accumulateMessage(events: SseEvent[]): AnthropicMessage {
  const start = events[0]!.data.message as AnthropicMessage;
  const message: AnthropicMessage = { ...start, content: [] };
  const json: string[] = [];
  for (const { event, data } of events) {
    if (event === 'content_block_start') {
      message.content.push({ ...(data.content_block as AnthropicContentBlock) });
      json.push('');
    } else if (event === 'content_block_delta') {
      const index = data.index as number;
      const block = message.content[index] as Record<string, unknown>;
      const delta = data.delta as Record<string, string>;
      if (delta.type === 'text_delta') block.text = (block.text as string) + delta.text;
      if (delta.type === 'thinking_delta') block.thinking = (block.thinking as string) + delta.thinking;
      if (delta.type === 'input_json_delta') json[index] += delta.partial_json;
    } else if (event === 'message_delta') {
      const delta = data.delta as { stop_reason: AnthropicMessage['stop_reason']; stop_sequence: string | null };
      message.stop_reason = delta.stop_reason;
      message.stop_sequence = delta.stop_sequence;
      message.usage = data.usage as AnthropicMessage['usage'];
    }
  }
  message.content.forEach((block, i) => {
    if (block.type === 'tool_use' && json[i] !== '') block.input = JSON.parse(json[i]!) as Record<string, unknown>;
  });
  return message;
}
