import { parseNodeId } from '../node-id.ts';
/**
 * Value parsers for environment variables. Each returns the parsed value or throws a
 * ConfigError whose one-line message names the variable, the value and what is allowed.
 */
export class ConfigError extends Error {
  readonly variable: string;
  /** What the variable accepts, as in the message. */
  readonly allowed: string;

  constructor(variable: string, value: string, allowed: string) {
    // JSON.stringify escapes newlines: the message stays on one line whatever the value holds.
    super(`${variable}=${JSON.stringify(value)} is invalid: expected ${allowed}`);
    this.name = 'ConfigError';
    this.variable = variable;
    this.allowed = allowed;
  }
}

export type Parser<T> = (raw: string, name: string) => T;

/** Plain decimal only: Number() would also take "0x1F40", "1e3" or "0b1" without a word. */
const DECIMAL_INTEGER = /^[+-]?\d+$/;
const DECIMAL_NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)$/;

export function integer(min: number, max = Number.MAX_SAFE_INTEGER): Parser<number> {
  return (raw, name) => {
    const value = Number(raw.trim());
    if (!DECIMAL_INTEGER.test(raw.trim()) || !Number.isSafeInteger(value) || value < min || value > max) {
      throw new ConfigError(name, raw, `an integer from ${min} to ${max}`);
    }
    return value;
  };
}

/** Seconds, decimals allowed ("0.5"), returned as milliseconds. */
export function secondsAsMs(min: number, max = 86_400): Parser<number> {
  return (raw, name) => {
    const value = Number(raw.trim());
    if (!DECIMAL_NUMBER.test(raw.trim()) || value < min || value > max) {
      throw new ConfigError(name, raw, `a number of seconds from ${min} to ${max}`);
    }
    const ms = Math.round(value * 1000);
    // 0 often means "off": a tiny positive value must not round down to it.
    return value > 0 && ms === 0 ? 1 : ms;
  };
}

export function oneOf<T extends string>(allowed: readonly T[], { caseInsensitive = true } = {}): Parser<T> {
  return (raw, name) => {
    const value = raw.trim();
    const match = allowed.find((a) => (caseInsensitive ? a.toLowerCase() === value.toLowerCase() : a === value));
    if (match === undefined) throw new ConfigError(name, raw, `one of ${allowed.join(', ')}`);
    return match;
  };
}

export const boolean: Parser<boolean> = (raw, name) => {
  const value = raw.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(value)) return true;
  if (['0', 'false', 'no', 'off', ''].includes(value)) return false;
  throw new ConfigError(name, raw, 'true or false');
};

export const text: Parser<string> = (raw) => raw.trim();

/** An http:// or https:// URL that parses (a collector's address, say). */
export const httpUrl: Parser<string> = (raw, name) => {
  const value = raw.trim();
  let ok = /^https?:\/\//i.test(value);
  if (ok) {
    try {
      new URL(value);
    } catch {
      ok = false;
    }
  }
  if (!ok) throw new ConfigError(name, raw, 'an http:// or https:// URL');
  return value;
};

/** A list separated by commas or semicolons; empty items are dropped. */
export const list: Parser<string[]> = (raw) =>
  raw
    .split(/[,;]/)
    .map((item) => item.trim())
    .filter((item) => item.length > 0);

/**
 * Keys clients must present, separated by , or ;. A value that holds no key ("," or " ")
 * is refused instead of read as "no keys": that would leave the gateway open while its
 * operator believes it is closed. Short keys are refused as guessable. The keys are
 * secrets: the message shows one "…" per key and the length of the first short one.
 */
export function apiKeyList(minChars: number): Parser<string[]> {
  return (raw, name) => {
    const keys = list(raw, name);
    const expected = `keys of at least ${minChars} characters separated by , or ; (unset or empty: no keys, the gateway is open)`;
    if (keys.length === 0 && raw !== '') throw new ConfigError(name, raw, `${expected}; this value holds no key`);
    const short = keys.findIndex((key) => key.length < minChars);
    if (short >= 0) {
      const shown = keys.map(() => '…').join(',');
      throw new ConfigError(name, shown, `${expected}; key ${short + 1} has ${keys[short].length}`);
    }
    return keys;
  };
}

/** "80,8000-8003" -> [80, 8000, 8001, 8002, 8003] */
export const portList: Parser<number[]> = (raw, name) => {
  const ports: number[] = [];
  for (const item of list(raw, name)) {
    const range = /^(\d+)\s*-\s*(\d+)$/.exec(item);
    const single = /^\d+$/.test(item) ? Number(item) : Number.NaN;
    const [from, to] = range ? [Number(range[1]), Number(range[2])] : [single, single];
    if (!Number.isInteger(from) || !Number.isInteger(to) || from < 1 || to > 65_535 || from > to) {
      throw new ConfigError(name, raw, 'ports from 1 to 65535, comma-separated, ranges as 8000-8010');
    }
    for (let port = from; port <= to; port++) ports.push(port);
  }
  if (ports.length === 0) throw new ConfigError(name, raw, 'at least one port');
  return [...new Set(ports)];
};

export interface HostPort {
  /** A name or an IP address, IPv6 without brackets (as net.connect takes it). */
  host: string;
  port: number;
}

/** "a:26379, [::1]:26380; b" -> hosts and ports, `defaultPort` where an entry has none. */
export function hostPortList(defaultPort: number): Parser<HostPort[]> {
  return (raw, name) => {
    const allowed = `host:port entries separated by , or ; (port ${defaultPort} when left out)`;
    const entries = list(raw, name).map((item) => {
      // Without a port of its own, "host" (or "[v6]") is read as "host:<defaultPort>".
      const parsed = parseNodeId(item) ?? parseNodeId(`${item}:${defaultPort}`);
      if (parsed === null) throw new ConfigError(name, raw, `${allowed} ("${item}" is not host:port)`);
      return { host: parsed.host, port: parsed.port };
    });
    if (entries.length === 0) throw new ConfigError(name, raw, `${allowed}, at least one`);
    return entries;
  };
}

/**
 * "host:port=value" pairs separated by , or ; — keys are canonical node ids (node-id.ts), so
 * "[0:0::1]:8080" names the node the monitor records as "[::1]:8080". With
 * `secret`, values (API keys) never reach an error message: only node ids are echoed.
 */
export function nodeMap<T>(valueParser: Parser<T>, allowed: string, { secret = false } = {}): Parser<ReadonlyMap<string, T>> {
  return (raw, name) => {
    const map = new Map<string, T>();
    const shown = secret ? redactMapValues(raw) : raw;
    const expected = `host:port=${allowed} pairs separated by , or ;`;
    for (const item of list(raw, name)) {
      const eq = item.indexOf('=');
      const key = eq > 0 ? item.slice(0, eq).trim() : '';
      const value = eq > 0 ? item.slice(eq + 1).trim() : '';
      const parsed = parseNodeId(key);
      if (parsed === null || value === '') {
        const what = secret ? `an entry` : `"${item}"`;
        throw new ConfigError(name, shown, `${expected} (${what} is not host:port=${allowed})`);
      }
      try {
        map.set(parsed.node, valueParser(value, name));
      } catch (error) {
        if (!(error instanceof ConfigError)) throw error;
        throw new ConfigError(name, shown, `${expected} (${key}: ${error.allowed})`);
      }
    }
    return map;
  };
}

/**
 * Node API keys must never appear in an error message. Keeps each entry's node id when it
 * looks like one and hides everything else: a key may itself contain , or ; and so spill
 * into what looks like the next entry.
 */
function redactMapValues(raw: string): string {
  return list(raw, '')
    .map((item) => {
      const eq = item.indexOf('=');
      const key = eq > 0 ? item.slice(0, eq).trim() : '';
      return parseNodeId(key) !== null ? `${key}=…` : '…';
    })
    .join(',');
}

/** 0 turns the feature off; anything else must be a sane interval (a 1 ms poll would hammer the fleet). */
export function offOrInteger(min: number, max: number): Parser<number> {
  return (raw, name) => {
    const value = Number(raw.trim());
    if (!DECIMAL_INTEGER.test(raw.trim()) || !(value === 0 || (value >= min && value <= max))) {
      throw new ConfigError(name, raw, `0 (off) or an integer from ${min} to ${max}`);
    }
    return value;
  };
}

/**
 * MODEL_ALIASES: "public=id1|id2|id3" entries separated by , or ; — one public model name
 * served by nodes that call the model differently (Ollama tags, Hugging Face repo ids, LM
 * Studio keys). Maps the public name to its concrete ids, in the order given.
 */
export const modelAliases: Parser<ReadonlyMap<string, readonly string[]>> = (raw, name) => {
  const aliases = new Map<string, string[]>();
  const expected = 'public=id|id… entries separated by , or ;';
  for (const item of list(raw, name)) {
    const eq = item.indexOf('=');
    const alias = eq > 0 ? item.slice(0, eq).trim() : '';
    const ids =
      eq > 0
        ? item
            .slice(eq + 1)
            .split('|')
            .map((id) => id.trim())
        : [];
    if (alias === '' || ids.length === 0 || ids.some((id) => id === '')) {
      throw new ConfigError(name, raw, `${expected} ("${item}" is not public=id|id…)`);
    }
    if (aliases.has(alias)) throw new ConfigError(name, raw, `${expected} ("${alias}" is defined twice)`);
    aliases.set(alias, [...new Set(ids)]);
  }
  return aliases;
};
