/**
 * Upstream error bodies sometimes quote the credential they rejected ("Incorrect API key
 * provided: sk-…"). Those bodies go to clients, logs and 502 messages, so any configured
 * key (NODE_API_KEYS, GATEWAY_API_KEYS) is cut out first. Keys shorter than 4 characters
 * are not searched for: they would mangle ordinary words and protect nothing.
 */
export function secretsOf(nodeApiKeys: ReadonlyMap<string, string>, gatewayApiKeys: readonly string[]): string[] {
  return [...new Set([...nodeApiKeys.values(), ...gatewayApiKeys])].filter((key) => key.length >= 4);
}

export function redactSecrets(raw: Buffer, secrets: readonly string[]): Buffer {
  if (secrets.length === 0) return raw;
  let text: string | null = null;
  for (const secret of secrets) {
    if (!raw.includes(secret)) continue;
    text = (text ?? raw.toString('utf8')).split(secret).join('***');
  }
  return text === null ? raw : Buffer.from(text);
}
