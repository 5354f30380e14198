import { describe, expect, test } from 'vitest';
import { inspectSseEvent, sseErrorEvent, SseEventSplitter } from './sse-events.ts';

const chunk = (content: string, finish: string | null = null) =>
  `data: ${JSON.stringify({ choices: [{ index: 0, delta: { content }, finish_reason: finish }] })}\n\n`;

describe('SseEventSplitter', () => {
  test('splits whole events and keeps a partial one for the next chunk', () => {
    const splitter = new SseEventSplitter();
    const text = chunk('a') + chunk('b');
    const cut = text.length - 5;
    expect(splitter.push(Buffer.from(text.slice(0, cut)))).toEqual([chunk('a')]);
    expect(splitter.push(Buffer.from(text.slice(cut)))).toEqual([chunk('b')]);
    expect(splitter.flush()).toBeNull();
  });

  test('CRLF line ends, even split between chunks, are normalised without inventing events', () => {
    const splitter = new SseEventSplitter();
    const events = [
      ...splitter.push(Buffer.from('data: {"a":1}\r')),
      ...splitter.push(Buffer.from('\n\r\ndata: {"b"')),
      ...splitter.push(Buffer.from(':2}\r\n\r\n')),
    ];
    expect(events).toEqual(['data: {"a":1}\n\n', 'data: {"b":2}\n\n']);
  });

  test('a multi-byte character split across chunks survives', () => {
    const splitter = new SseEventSplitter();
    const bytes = Buffer.from(chunk('héllo ✓'));
    const at = bytes.indexOf(0xe2) + 1; // inside the 3-byte check mark
    const events = [...splitter.push(bytes.subarray(0, at)), ...splitter.push(bytes.subarray(at))];
    expect(events).toEqual([chunk('héllo ✓')]);
  });

  test('an event that never ends is bounded', () => {
    const splitter = new SseEventSplitter(100);
    expect(() => splitter.push(Buffer.from(`data: ${'x'.repeat(200)}`))).toThrow(expect.objectContaining({ code: 'AI_LB_BAD_RESPONSE' }));
  });

  test('flush returns a last event that lacked its blank line', () => {
    const splitter = new SseEventSplitter();
    splitter.push(Buffer.from('data: [DONE]'));
    expect(splitter.flush()).toBe('data: [DONE]\n\n');
  });
});

describe('inspectSseEvent', () => {
  test('classifies data, done, error, invalid and other events', () => {
    expect(inspectSseEvent(chunk('x'))).toEqual({ kind: 'data', finished: false });
    expect(inspectSseEvent(chunk('', 'stop'))).toEqual({ kind: 'data', finished: true });
    expect(inspectSseEvent('data: [DONE]\n\n')).toEqual({ kind: 'done', finished: true });
    expect(inspectSseEvent('data: {"error":{"message":"boom"}}\n\n').kind).toBe('error');
    expect(inspectSseEvent('data: {not json\n\n').kind).toBe('invalid');
    expect(inspectSseEvent('data: 42\n\n').kind).toBe('invalid');
    expect(inspectSseEvent(': keep-alive\n\n').kind).toBe('other');
    expect(inspectSseEvent('event: ping\n\n').kind).toBe('other');
  });

  test('data split over several data lines is joined before parsing', () => {
    expect(inspectSseEvent('data: {"choices":\ndata: []}\n\n').kind).toBe('data');
  });

  test('sseErrorEvent is one data event carrying the OpenAI error envelope', () => {
    const event = sseErrorEvent('stream broke', 'upstream_stream_error');
    expect(event.endsWith('\n\n')).toBe(true);
    expect(JSON.parse(event.slice(6))).toEqual({
      error: { message: 'stream broke', type: 'server_error', param: null, code: 'upstream_stream_error' },
    });
  });
});
