/**
 * Ollama's error format, {"error":"…"}. The gateway's own errors are rendered by
 * http/error-formats.ts (one renderer per format); the translation only needs to tell that
 * an upstream's error body already is Ollama's (an Ollama node), so that it passes through.
 */
export interface OllamaErrorBody {
  error: string;
}

export function isOllamaErrorBody(value: unknown): value is OllamaErrorBody {
  return typeof (value as { error?: unknown } | null)?.error === 'string';
}
