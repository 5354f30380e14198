/**
 * Ollama's error format, {"error":"…"}, for every error an /api/* client gets: the gateway's
 * own (with its status) and an upstream's, whatever format the node used. The ollama clients
 * read `error` as the message and the HTTP status as the kind.
 */
export interface OllamaErrorBody {
  error: string;
}

export function toOllamaError(error: { status: number; message: string }): { status: number; body: OllamaErrorBody } {
  return { status: error.status, body: { error: error.message } };
}

/** An upstream error body that already is Ollama's (an Ollama node) passes through as is. */
export function isOllamaErrorBody(value: unknown): value is OllamaErrorBody {
  return typeof (value as { error?: unknown } | null)?.error === 'string';
}
