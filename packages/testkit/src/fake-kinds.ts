/**
 * What each kind of LLM server answers on its discovery endpoints, shaped like the real
 * servers (recorded samples in ../fixtures). The monitor's probes are tested against these.
 */
export type FakeKind = 'openai' | 'ollama' | 'llamacpp' | 'vllm' | 'lmstudio' | 'garbage';

export interface DiscoveryResponse {
  status: number;
  contentType: string;
  body: string;
}

export function discoveryResponse(
  kind: FakeKind,
  path: string,
  options: { models: string[]; slots: number },
): DiscoveryResponse | undefined {
  if (path === '/v1/models' && kind !== 'garbage') {
    return json({
      object: 'list',
      data: options.models.map((id) => ({ id, object: 'model', created: 1_700_000_000, owned_by: kind })),
    });
  }
  return undefined;
}

function json(value: unknown, status = 200): DiscoveryResponse {
  return { status, contentType: 'application/json', body: JSON.stringify(value) };
}
