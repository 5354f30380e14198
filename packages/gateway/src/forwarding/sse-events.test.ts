import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  DEFAULT_MAX_EVENT_CHARS,
  classifySseEvent,
  plainContentEvents,
  plainTypedEvents,
  sseErrorEvent,
  SseEventSplitter,
} from './sse-events.ts';
import { TYPED_SSE } from './stream-shapes.ts';

const chunk = (content: string, finish: string | null = null) =>
  `data: ${JSON.stringify({ choices: [{ index: 0, delta: { content }, finish_reason: finish }] })}\n\n`;

/** Everything a splitter yields for these chunks, the flushed rest included. */
function splitAll(chunks: Buffer[], splitter = new SseEventSplitter()): string[] {
  const events = chunks.flatMap((c) => splitter.push(c));
  const rest = splitter.flush();
  return rest === null ? events : [...events, rest];
}

/** The buffer cut at the given byte offsets. */
function cutAt(bytes: Buffer, offsets: number[]): Buffer[] {
  const points = [...new Set(offsets.filter((o) => o > 0 && o < bytes.length))].sort((a, b) => a - b);
  return [0, ...points].map((from, i) => bytes.subarray(from, points[i] ?? bytes.length));
}

const byteByByte = (text: string) => [...Buffer.from(text)].map((b) => Buffer.from([b]));

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

  test.each([
    ['LF', '\n'],
    ['CRLF', '\r\n'],
    ['CR', '\r'],
  ])('%s line ends give the same events at every cut, and byte by byte', (_name, eol) => {
    const text = `: keep-alive${eol}${eol}data: {"a":1}${eol}${eol}event: x${eol}data: {"b":${eol}data: 2}${eol}${eol}`;
    const expected = [': keep-alive\n\n', 'data: {"a":1}\n\n', 'event: x\ndata: {"b":\ndata: 2}\n\n'];
    const bytes = Buffer.from(text);
    for (let at = 0; at <= bytes.length; at++) expect(splitAll(cutAt(bytes, [at]))).toEqual(expected);
    expect(splitAll(byteByByte(text))).toEqual(expected);
  });

  test('the blank line that ends an event may arrive alone, or split across chunks', () => {
    const splitter = new SseEventSplitter();
    expect(splitter.push(Buffer.from('data: 1\n'))).toEqual([]);
    expect(splitter.push(Buffer.from('\n'))).toEqual(['data: 1\n\n']);
    expect(splitter.push(Buffer.from('data: 2'))).toEqual([]);
    expect(splitter.push(Buffer.from('\n'))).toEqual([]);
    expect(splitter.push(Buffer.from('\ndata: 3\n\n'))).toEqual(['data: 2\n\n', 'data: 3\n\n']);
  });

  test('stray blank lines before and between events make no events', () => {
    const text = '\n\r\n\rdata: 1\n\n\n\n\r\n\r\rdata: 2\r\n\r\n\r\n\n';
    expect(splitAll([Buffer.from(text)])).toEqual(['data: 1\n\n', 'data: 2\n\n']);
    expect(splitAll(byteByByte(text))).toEqual(['data: 1\n\n', 'data: 2\n\n']);
  });

  test('a multi-byte character split across chunks survives', () => {
    const splitter = new SseEventSplitter();
    const bytes = Buffer.from(chunk('héllo ✓'));
    const at = bytes.indexOf(0xe2) + 1; // inside the 3-byte check mark
    const events = [...splitter.push(bytes.subarray(0, at)), ...splitter.push(bytes.subarray(at))];
    expect(events).toEqual([chunk('héllo ✓')]);
  });

  test('multi-byte text survives a cut at every byte, next to CRLF line ends', () => {
    const text = 'data: {"c":"é✓😀"}\r\n\r\ndata: {"c":"日本"}\r\n\r\n';
    const bytes = Buffer.from(text);
    for (let at = 0; at <= bytes.length; at++) {
      expect(splitAll(cutAt(bytes, [at]))).toEqual(['data: {"c":"é✓😀"}\n\n', 'data: {"c":"日本"}\n\n']);
    }
  });

  test('any chunking of any stream gives the events, in order (property)', () => {
    // A line that is only blanks would be an event flush() rightly drops: each starts with "d".
    const lineText = fc.string({ unit: fc.constantFrom('a', 'Z', ' ', ':', '{', '"', 'é', '✓', '😀'), maxLength: 12 }).map((t) => `d${t}`);
    const eol = fc.constantFrom('\n', '\r\n', '\r');
    const event = fc.array(fc.tuple(lineText, eol), { minLength: 1, maxLength: 4 });
    const stream = fc.array(fc.tuple(event, fc.array(eol, { minLength: 1, maxLength: 3 })), { minLength: 1, maxLength: 6 });
    fc.assert(
      fc.property(stream, fc.array(fc.nat(400), { maxLength: 30 }), fc.boolean(), (events, cuts, endsOpen) => {
        let text = '';
        let previous = '';
        // "\r" then "\n" is one CRLF line end, not two: the generator must not write that pair.
        const end = (e: string) => {
          const written = previous === '\r' && e === '\n' ? '\r\n' : e;
          previous = written;
          return written;
        };
        const expected: string[] = [];
        events.forEach(([lines, blanks], i) => {
          for (const [content, e] of lines) text += content + end(e);
          expected.push(`${lines.map(([content]) => content).join('\n')}\n\n`);
          // The last event may lack its blank line: flush() then returns it.
          if (!(endsOpen && i === events.length - 1)) for (const e of blanks) text += end(e);
        });
        const bytes = Buffer.from(text);
        expect(splitAll(cutAt(bytes, cuts))).toEqual(expected);
      }),
      { numRuns: 300 },
    );
  });

  test('an event that never ends is bounded', () => {
    const splitter = new SseEventSplitter(100);
    expect(() => splitter.push(Buffer.from(`data: ${'x'.repeat(200)}`))).toThrow(expect.objectContaining({ code: 'AI_LB_BAD_RESPONSE' }));
  });

  test('an event over the limit is refused even when it ends within the chunk; one at the limit passes', () => {
    const atLimit = `data: ${'x'.repeat(92)}\n\n`; // 100 characters
    expect(new SseEventSplitter(100).push(Buffer.from(atLimit))).toEqual([atLimit]);
    const splitter = new SseEventSplitter(100);
    expect(splitter.push(Buffer.from(atLimit.slice(0, 60)))).toEqual([]);
    expect(splitter.push(Buffer.from(atLimit.slice(60)))).toEqual([atLimit]);
    const over = new SseEventSplitter(100);
    over.push(Buffer.from('data: '));
    expect(() => over.push(Buffer.from(`${'x'.repeat(100)}\n\n`))).toThrow(/exceeded 100 characters/);
  });

  test('the default limit is far below the old 4 MiB: a dripping endless event is cut at 256 KiB', () => {
    expect(DEFAULT_MAX_EVENT_CHARS).toBe(256 * 1024);
    const splitter = new SseEventSplitter();
    const drip = Buffer.from('x'.repeat(200));
    splitter.push(Buffer.from('data: '));
    let fed = 6;
    expect(() => {
      for (let i = 0; i < 10_000; i++) {
        splitter.push(drip);
        fed += drip.length;
      }
    }).toThrow(expect.objectContaining({ code: 'AI_LB_BAD_RESPONSE' }));
    expect(fed).toBeLessThanOrEqual(DEFAULT_MAX_EVENT_CHARS);
    expect(fed + drip.length).toBeGreaterThan(DEFAULT_MAX_EVENT_CHARS);
  });

  test('an endless event fed in 200-byte chunks costs linear time: 1 MiB in well under a second', () => {
    // The limit is raised so the whole MiB is buffered: this measures the scan, not the cut.
    // Linear, this takes ≈ 15 ms; rescanning everything pending on each of the 5,243 chunks
    // took 12 s on the same machine. The bound is loose for a busy CI machine.
    const splitter = new SseEventSplitter(2 * 1024 * 1024);
    const drip = Buffer.from('x'.repeat(200));
    splitter.push(Buffer.from('data: '));
    let events = 0;
    const started = performance.now();
    for (let fed = 0; fed < 1024 * 1024; fed += drip.length) events += splitter.push(drip).length;
    const elapsedMs = performance.now() - started;
    expect(events).toBe(0);
    expect(elapsedMs).toBeLessThan(1000);
    const rest = splitter.flush();
    expect(rest?.startsWith('data: xxx')).toBe(true);
  });

  test('flush returns a last event that lacked its blank line', () => {
    const splitter = new SseEventSplitter();
    splitter.push(Buffer.from('data: [DONE]'));
    expect(splitter.flush()).toBe('data: [DONE]\n\n');
  });

  test('flush after a lone CR returns the event once, and nothing for only blank lines', () => {
    const splitter = new SseEventSplitter();
    splitter.push(Buffer.from('data: [DONE]\r'));
    expect(splitter.flush()).toBe('data: [DONE]\n\n');
    const blank = new SseEventSplitter();
    blank.push(Buffer.from('\r\n\r'));
    expect(blank.flush()).toBeNull();
  });
});

describe('classifySseEvent', () => {
  test('classifies data, done, error, invalid and other events', () => {
    expect(classifySseEvent(chunk('x'))).toMatchObject({ kind: 'data', finished: false });
    expect(classifySseEvent(chunk('', 'stop'))).toMatchObject({ kind: 'data', finished: true });
    expect(classifySseEvent('data: [DONE]\n\n')).toEqual({ kind: 'done', finished: true });
    expect(classifySseEvent('data: {"error":{"message":"boom"}}\n\n').kind).toBe('error');
    expect(classifySseEvent('data: {not json\n\n').kind).toBe('invalid');
    expect(classifySseEvent('data: 42\n\n').kind).toBe('invalid');
    expect(classifySseEvent(': keep-alive\n\n').kind).toBe('other');
    expect(classifySseEvent('event: ping\n\n').kind).toBe('other');
  });

  test('data split over several data lines is joined before parsing', () => {
    expect(classifySseEvent('data: {"choices":\ndata: []}\n\n').kind).toBe('data');
  });

  test('sseErrorEvent is one data event carrying the OpenAI error envelope', () => {
    const event = sseErrorEvent('stream broke', 'upstream_stream_error');
    expect(event.endsWith('\n\n')).toBe(true);
    expect(JSON.parse(event.slice(6))).toEqual({
      error: { message: 'stream broke', type: 'server_error', param: null, code: 'upstream_stream_error' },
    });
  });
});

describe('SseEventSplitter.exact', () => {
  test('set when a chunk is whole events and nothing else; the chunk then says what the events say', () => {
    const splitter = new SseEventSplitter();
    const text = chunk('a') + chunk('b');
    expect(splitter.push(Buffer.from(text)).join('')).toBe(text);
    expect(splitter.exact).toBe(true);
    expect(splitter.push(Buffer.from(chunk('é✓')))).toHaveLength(1);
    expect(splitter.exact).toBe(true);
  });

  test.each([
    ['a CRLF stream', ['data: {"a":1}\r\n\r\n']],
    ['stray blank lines', ['\ndata: {"a":1}\n\n']],
    ['blank lines between events', ['data: {"a":1}\n\n\ndata: {"b":1}\n\n']],
    ['a chunk that ends inside an event', ['data: {"a":1}\n\ndata: {"b"']],
    ['invalid UTF-8', [Buffer.from([...Buffer.from('data: {"a":"'), 0xff, ...Buffer.from('"}\n\n')])]],
  ])('not set for %s', (_name, chunks) => {
    const splitter = new SseEventSplitter();
    for (const c of chunks) splitter.push(typeof c === 'string' ? Buffer.from(c) : c);
    expect(splitter.exact).toBe(false);
  });

  test('not set for the chunk after one that left part of an event behind', () => {
    const splitter = new SseEventSplitter();
    splitter.push(Buffer.from('data: {"a"'));
    expect(splitter.push(Buffer.from(':1}\n\n'))).toEqual(['data: {"a":1}\n\n']);
    expect(splitter.exact).toBe(false);
    expect(splitter.push(Buffer.from(chunk('b')))).toHaveLength(1);
    expect(splitter.exact).toBe(true);
  });
});

describe('SseEventSplitter.betweenEvents', () => {
  test('only when no part of an event, of a CRLF or of a character is pending', () => {
    const splitter = new SseEventSplitter();
    expect(splitter.betweenEvents).toBe(true);
    splitter.push(Buffer.from('data: {"a"'));
    expect(splitter.betweenEvents).toBe(false);
    splitter.push(Buffer.from(':1}\n\n'));
    expect(splitter.betweenEvents).toBe(true);
    splitter.push(Buffer.from('data: {"a":1}\r\n\r'));
    expect(splitter.betweenEvents).toBe(false);
    splitter.push(Buffer.from('\n'));
    expect(splitter.betweenEvents).toBe(true);
    const check = Buffer.from('✓');
    splitter.push(Buffer.concat([Buffer.from('data: {"a":1}\n\n'), check.subarray(0, 1)]));
    expect(splitter.betweenEvents).toBe(false);
    expect(splitter.push(Buffer.concat([check.subarray(1), Buffer.from('\n\n')]))).toEqual(['✓\n\n']);
    expect(splitter.betweenEvents).toBe(true);
  });
});

describe('plainContentEvents', () => {
  const plain = (text: string | Buffer) => plainContentEvents(typeof text === 'string' ? Buffer.from(text) : text);

  test('counts whole plain content chunks, compact or spaced, ASCII or not', () => {
    expect(plain(chunk('x'))).toBe(1);
    const compact = 'data:{"choices":[{"delta":{"content":"b"},"finish_reason":null}]}\n\n';
    expect(plain(`${chunk('a')}${chunk('é✓')}${compact}`)).toBe(3);
    expect(plain('data: { "choices" : [ { "finish_reason" : null , "logprobs" : -1.5e-3 } ] }\n\n')).toBe(1);
    expect(plain('data: {"a":"say \\"hi\\"\\n","b":[true,false,null,{}]}\n\n')).toBe(1);
  });

  test('usage and error keys that are null are plain: OpenAI sends "usage":null in every chunk when usage was asked for', () => {
    const withNullUsage = (content: string) =>
      `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content }, finish_reason: null }], usage: null })}\n\n`;
    expect(plain(withNullUsage('a') + withNullUsage('b'))).toBe(2);
    expect(plain('data: {"error": null, "choices":[{"delta":{"content":"x"},"finish_reason":null}]}\n\n')).toBe(1);
    for (const event of [withNullUsage('a'), 'data: {"error": null, "choices":[]}\n\n']) {
      expect(classifySseEvent(event)).toMatchObject({ kind: 'data', finished: false });
    }
  });

  test('\\u escapes in values are plain: Go servers (Ollama) write <, > and & as \\u003c, \\u003e, \\u0026', () => {
    const ollama =
      'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"llama3.2","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"role":"assistant","content":"a \\u003c b \\u0026\\u0026 c \\u003e d \\uD83D\\uDE00"},"finish_reason":null}]}\n\n';
    expect(JSON.parse(ollama.slice(6)).choices[0].delta.content).toBe('a < b && c > d 😀');
    expect(plain(ollama)).toBe(1);
    expect(classifySseEvent(ollama)).toMatchObject({ kind: 'data', finished: false });
  });

  test('the content chunks of vLLM, llama.cpp and OpenAI (usage asked for) are plain, as recorded', () => {
    const recorded = [
      'data: {"id":"chatcmpl-a0e8","object":"chat.completion.chunk","created":1749994809,"model":"/home/jovyan/qwen3-8b","choices":[{"index":0,"delta":{"content":"가"},"logprobs":null,"finish_reason":null}]}\n\n',
      'data: {"choices":[{"finish_reason":null,"index":0,"delta":{"content":" return"}}],"created":1764590000,"id":"chatcmpl-9c2J","model":"qwen","system_fingerprint":"b6549-2e3f1a0c","object":"chat.completion.chunk"}\n\n',
      'data: {"id":"chatcmpl-Cc3V","object":"chat.completion.chunk","created":1764590000,"model":"gpt-4o","service_tier":"default","system_fingerprint":null,"choices":[{"index":0,"delta":{"content":" the"},"logprobs":null,"finish_reason":null}],"usage":null}\n\n',
    ];
    expect(plain(recorded.join(''))).toBe(3);
  });

  test('any text escaped as \\uXXXX in a value is plain, and data to classifySseEvent (property)', () => {
    const hex4 = (unit: number) => `\\u${unit.toString(16).padStart(4, '0')}`;
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), fc.boolean(), (text, upper) => {
        const escaped = [...Array(text.length).keys()].map((i) => hex4(text.charCodeAt(i))).join('');
        const value = upper ? escaped.toUpperCase().replace(/\\U/g, '\\u') : escaped;
        const event = `data: {"choices":[{"delta":{"content":"${value}"},"finish_reason":null}]}\n\n`;
        expect(JSON.parse(event.slice(6)).choices[0].delta.content).toBe(text);
        expect(plain(event)).toBe(1);
        expect(classifySseEvent(event)).toMatchObject({ kind: 'data', finished: false });
      }),
      { numRuns: 1000 },
    );
  });

  test.each([
    ['the end of the answer', chunk('', 'stop')],
    ['a spaced finish_reason', 'data: {"choices":[{"delta":{},"finish_reason": "length"}]}\n\n'],
    ['usage', 'data: {"choices":[],"usage":{"completion_tokens":3}}\n\n'],
    ['usage that is not null', 'data: {"choices":[],"usage":{}}\n\n'],
    ['an error that is not null', 'data: {"error":"x"}\n\n'],
    ['a misspelled null', 'data: {"usage":nul}\n\n'],
    ['an in-band error', 'data: {"error":{"message":"boom"}}\n\n'],
    ['an error key spelled with an escape', 'data: {"\\u0065rror":{"message":"boom"}}\n\n'],
    ['any key spelled with an escape', 'data: {"\\u0061":1}\n\n'],
    ['a short \\u escape', 'data: {"a":"\\u12"}\n\n'],
    ['a \\u escape that is not hex', 'data: {"a":"\\u12g4"}\n\n'],
    ['[DONE]', 'data: [DONE]\n\n'],
    ['a keep-alive comment', ': keep-alive\n\n'],
    ['a named event', 'event: x\ndata: {"a":1}\n\n'],
    ['data over two lines', 'data: {"a":\ndata: 1}\n\n'],
    ['a CRLF stream', 'data: {"a":1}\r\n\r\n'],
    ['a stray blank line', 'data: {"a":1}\n\n\n'],
    ['a chunk ending inside an event', `${chunk('a')}data: {"b"`],
    ['a plain chunk followed by the end', chunk('a') + chunk('', 'stop')],
    ['invalid UTF-8', Buffer.from([...Buffer.from('data: {"a":"'), 0xff, ...Buffer.from('"}\n\n')])],
    ['not JSON', 'data: {this is not json\n\n'],
    ['a trailing comma', 'data: {"a":1,}\n\n'],
    ['a leading zero', 'data: {"a":01}\n\n'],
    ['a control character in a string', 'data: {"a":"\u0001"}\n\n'],
    ['two objects', 'data: {"a":1}{"b":2}\n\n'],
    ['a blank after the object', 'data: {"a":1}\t\n\n'],
    ['nesting deeper than the check follows (a hostile upstream)', `data: {"a":${'['.repeat(100_000)}${']'.repeat(100_000)}}\n\n`],
    ['a misspelled word', 'data: {"a":tru}\n\n'],
    ['an unknown escape', 'data: {"a":"\\x"}\n\n'],
  ])('not plain: %s', (_name, text) => {
    expect(plain(text)).toBe(0);
  });

  test('a plain chunk is content to classifySseEvent too: data, unfinished, without error or usage (property)', () => {
    const damaged = fc.tuple(fc.json(), fc.nat(), fc.nat(), fc.constantFrom('', '}', '{', '"', ',', ':', '\\', ' ', 'n', '1', 'e'));
    const keyed = fc.constantFrom(
      '',
      '"error":1,',
      '"error":null,',
      '"usage":{},',
      '"usage":null,',
      '"finish_reason":"stop",',
      '"finish_reason":null,',
      '"\\u0065rror":2,',
    );
    fc.assert(
      fc.property(damaged, keyed, fc.boolean(), ([json, cutAt, insertAt, insert], key, damage) => {
        let data = json.length > 2 && json.startsWith('{') ? `{${key}${json.slice(1)}` : `{${key}"v":${json}}`;
        if (damage) {
          const cut = cutAt % (data.length + 1);
          data = `${data.slice(0, cut)}${insert}${data.slice(cut + (insertAt % 3))}`;
        }
        const event = `data: ${data.replace(/\n/g, ' ')}\n\n`;
        if (plain(event) === 0) return;
        const full = classifySseEvent(event);
        expect({ kind: full.kind, finished: full.finished }).toEqual({ kind: 'data', finished: false });
        // Absent or null: no usage to read, no error to report.
        expect(full.record?.usage ?? null).toBeNull();
        expect(full.record?.error ?? null).toBeNull();
      }),
      { numRuns: 3000 },
    );
  });

  test('accepts exactly the JSON objects JSON.parse accepts, when they hold no key it must look at (property)', () => {
    const isObject = (text: string) => {
      try {
        const value = JSON.parse(text);
        return value !== null && typeof value === 'object' && !Array.isArray(value);
      } catch {
        return false;
      }
    };
    const text = fc.oneof(
      fc.json(),
      fc.string({
        unit: fc.constantFrom('{', '}', '[', ']', '"', ':', ',', '\\', '0', '1', '-', '.', 'e', 'E', '+', ' ', 't', 'r', 'n', 'a', '\t'),
      }),
    );
    fc.assert(
      fc.property(text, (t) => {
        const wrapped = t.startsWith('{') ? t : `{"k":${t}}`;
        // Line ends, \u escapes, the keys that decide something and blanks after the object
        // (plain wants the line to end at its brace) are the other tests' cases.
        fc.pre(!/[\n\r]|\\u|"(?:error|usage|finish_reason)"|\s$/.test(wrapped));
        expect(plain(`data: ${wrapped}\n\n`)).toBe(isObject(wrapped) ? 1 : 0);
      }),
      { numRuns: 5000 },
    );
  });
});

describe('plainTypedEvents (Anthropic Messages and Responses API streams)', () => {
  const typed = (text: string) => plainTypedEvents(Buffer.from(text));
  const delta = (d: object) =>
    `event: content_block_delta\ndata: ${JSON.stringify({ type: 'content_block_delta', index: 0, delta: d })}\n\n`;

  test('token events, as Anthropic and engines serving /v1/messages write them, are plain', () => {
    const text = delta({ type: 'text_delta', text: 'Hello, <world> & "you"\n' });
    const tool = delta({ type: 'input_json_delta', partial_json: '{"path": "src/a.ts"' });
    const thinking = delta({ type: 'thinking_delta', thinking: 'Let me think… 考える' });
    expect(typed(text + tool + thinking)).toBe(3);
    expect(typed('data: {"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"x"}}\n\n')).toBe(1);
    for (const event of [text, tool, thinking]) {
      expect(TYPED_SSE.classify(event)).toMatchObject({ kind: 'data', finished: false });
    }
    // The OpenAI lane is unchanged: an event line is not plain there.
    expect(plainContentEvents(Buffer.from(text))).toBe(0);
  });

  test('the token events of the Responses API, as OpenAI and vLLM write them, are plain', () => {
    const events = [
      'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","sequence_number":4,"item_id":"msg_68a1","output_index":0,"content_index":0,"delta":"Hello","logprobs":[],"obfuscation":"uV3k0"}\n\n',
      'event: response.function_call_arguments.delta\ndata: {"type":"response.function_call_arguments.delta","sequence_number":9,"item_id":"fc_1","output_index":1,"delta":"{\\"path\\":"}\n\n',
      'event: response.reasoning_text.delta\ndata: {"type":"response.reasoning_text.delta","item_id":"rs_1","output_index":0,"content_index":0,"delta":"First,","sequence_number":2}\n\n',
    ];
    expect(typed(events.join(''))).toBe(3);
    for (const event of events) expect(TYPED_SSE.classify(event)).toMatchObject({ kind: 'data', finished: false });
  });

  test.each([
    [
      'message_start (usage inside)',
      'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"m","stop_reason":null,"usage":{"input_tokens":10,"output_tokens":1}}}\n\n',
    ],
    [
      'message_delta (usage, stop_reason)',
      'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":15}}\n\n',
    ],
    ['message_stop', 'event: message_stop\ndata: {"type":"message_stop"}\n\n'],
    ['an error event', 'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'],
    ['an error typed as a delta by its event line', 'event: content_block_delta\ndata: {"type":"error","error":{"message":"boom"}}\n\n'],
    [
      'content_block_start',
      'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\n',
    ],
    ['content_block_stop', 'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n'],
    ['ping', 'event: ping\ndata: {"type": "ping"}\n\n'],
    [
      'response.created (names the response)',
      'event: response.created\ndata: {"type":"response.created","sequence_number":0,"response":{"id":"resp_1","object":"response","status":"in_progress"}}\n\n',
    ],
    [
      'response.completed (usage, the end)',
      'event: response.completed\ndata: {"type":"response.completed","response":{"id":"resp_1","object":"response","status":"completed","usage":{"input_tokens":3}}}\n\n',
    ],
    [
      'response.output_item.added',
      'event: response.output_item.added\ndata: {"type":"response.output_item.added","output_index":0,"item":{"id":"msg_1"}}\n\n',
    ],
    ['a delta that is a whole response', 'data: {"type":"response.output_text.delta","object":"response","id":"resp_1"}\n\n'],
    ['the type spelled with an escape', 'event: content_block_delta\ndata: {"type":"content_block_delt\\u0061","index":0}\n\n'],
    ['a second type key that ends the answer', 'data: {"type":"content_block_delta","type":"message_stop"}\n\n'],
    ['a type that is not a string', 'data: {"type":1,"index":0}\n\n'],
    ['an id field', 'id: 7\nevent: content_block_delta\ndata: {"type":"content_block_delta"}\n\n'],
    ['two event lines', 'event: a\nevent: content_block_delta\ndata: {"type":"content_block_delta"}\n\n'],
    ['an event line and no data', 'event: content_block_delta\n\n'],
    ['an event line that does not end', 'event: content_block_delta'],
    ['a CRLF stream', 'event: content_block_delta\r\ndata: {"type":"content_block_delta"}\r\n\r\n'],
  ])('not plain: %s', (_name, text) => {
    expect(typed(text)).toBe(0);
  });

  test('a typed plain chunk is content to TYPED_SSE too: data, unfinished, without error or usage (property)', () => {
    const plainTypes = ['content_block_delta', 'response.output_text.delta', 'response.function_call_arguments.delta'];
    const type = fc.constantFrom(
      ...plainTypes,
      'response.created',
      'message_stop',
      'error',
      'response.failed',
      'response.completed',
      'message_delta',
      'ping',
    );
    const extra = fc.constantFrom(
      '',
      '"error":{"message":"x"},',
      '"error":null,',
      '"usage":{"output_tokens":1},',
      '"usage":null,',
      '"type":"message_stop",',
      '"object":"response","id":"resp_1",',
    );
    const line = fc.constantFrom('', 'event: content_block_delta\n', 'event: error\n', 'event:x\n');
    fc.assert(
      fc.property(line, type, extra, fc.json(), fc.boolean(), (eventLine, t, more, json, nested) => {
        const body = nested ? `{"type":"${t}",${more}"delta":{"type":"text_delta","v":${json}}}` : `{${more}"type":"${t}","v":${json}}`;
        const event = `${eventLine}data: ${body.replace(/\n/g, ' ')}\n\n`;
        if (typed(event) === 0) return;
        expect(plainTypes).toContain(t);
        const full = TYPED_SSE.classify(event);
        expect({ kind: full.kind, finished: full.finished }).toEqual({ kind: 'data', finished: false });
        expect(full.record?.usage ?? null).toBeNull();
        expect(full.record?.error ?? null).toBeNull();
        expect(full.record?.type).toBe(t);
        // Nothing the Responses surface's observer reads: no response named.
        expect(full.record?.object).toBeUndefined();
      }),
      { numRuns: 3000 },
    );
  });
});
