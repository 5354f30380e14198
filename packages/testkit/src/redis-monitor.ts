import { connect, type Socket } from 'node:net';

/** One command Redis ran, as MONITOR reports it. */
export interface MonitoredCommand {
  /** "127.0.0.1:port" of the client that sent it, or "lua" for a script's redis.call. */
  source: string;
  /** The command name and its arguments, unescaped (a `\xHH` byte becomes one char). */
  args: string[];
}

export interface RedisMonitor {
  /** Every command seen since the monitor started (tests splice what they have read). */
  readonly seen: MonitoredCommand[];
  close(): void;
}

/**
 * MONITOR on a socket of its own, parsed line by line. Not ioredis' `monitor()`: that one
 * switches its parser to monitor mode only after MONITOR's +OK was handled, so a busy
 * server's first events, arriving in the same packet as the +OK (other test files share
 * the suite's redis-server), crash it with "Command queue state error".
 */
export function startRedisMonitor(url: string): Promise<RedisMonitor> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket: Socket = connect({ host: hostname, port: Number(port) });
    const seen: MonitoredCommand[] = [];
    let buffered = '';
    let ready = false;
    socket.setEncoding('utf8');
    socket.once('error', reject);
    socket.on('connect', () => socket.write('MONITOR\r\n'));
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      for (let end = buffered.indexOf('\r\n'); end !== -1; end = buffered.indexOf('\r\n')) {
        const line = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        if (!ready) {
          if (line !== '+OK') return reject(new Error(`MONITOR answered ${line}`));
          ready = true;
          socket.off('error', reject);
          socket.on('error', () => undefined); // closed by the test
          resolve({ seen, close: () => socket.destroy() });
          continue;
        }
        const event = parseMonitorLine(line);
        if (event !== null) seen.push(event);
      }
    });
  });
}

const LINE = /^\+\S+ \[\d+ ([^\]]+)\] (.*)$/;
const ARG = /"((?:[^"\\]|\\.)*)"/g;

/** `+<time> [<db> <source>] "<arg>" …`, each argument quoted and escaped by Redis (sdscatrepr). */
export function parseMonitorLine(line: string): MonitoredCommand | null {
  const match = LINE.exec(line);
  if (match === null) return null;
  const args = [...match[2].matchAll(ARG)].map((m) => unescapeRepr(m[1]));
  return { source: match[1], args };
}

const ESCAPES: Record<string, string> = { n: '\n', r: '\r', t: '\t', a: '\x07', b: '\b', '"': '"', '\\': '\\' };

function unescapeRepr(text: string): string {
  return text.replace(/\\(x[0-9a-f]{2}|.)/g, (_, code: string) =>
    code.length === 3 ? String.fromCharCode(parseInt(code.slice(1), 16)) : (ESCAPES[code] ?? code),
  );
}
