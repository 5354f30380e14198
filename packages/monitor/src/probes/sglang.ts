/**
 * SGLang: `GET /get_model_info` ({"model_path","is_generation",…}) identifies it;
 * `GET /get_server_info` returns its server arguments, among them `max_running_requests`
 * (null unless set with --max-running-requests, in which case it is the server's cap).
 */
import { badShape, isRecord, jsonBody, positiveInt, tryGet, type KindProbe } from './probe-context.ts';

export const SGLANG_MODEL_INFO_PATH = '/get_model_info';
export const SGLANG_SERVER_INFO_PATH = '/get_server_info';

export function parseSglangModelInfo(doc: unknown): { modelPath: string; isGeneration: boolean } {
  if (!isRecord(doc) || typeof doc.model_path !== 'string' || typeof doc.is_generation !== 'boolean') {
    throw badShape(SGLANG_MODEL_INFO_PATH, '{"model_path": string, "is_generation": boolean}');
  }
  return { modelPath: doc.model_path, isGeneration: doc.is_generation };
}

/** max_running_requests from the server args, or from the scheduler's internal state. */
export function parseSglangServerInfo(doc: unknown): number | null {
  if (!isRecord(doc)) throw badShape(SGLANG_SERVER_INFO_PATH, 'an object of server arguments');
  const internal = Array.isArray(doc.internal_states) && isRecord(doc.internal_states[0]) ? doc.internal_states[0] : {};
  return positiveInt(doc.max_running_requests) ?? positiveInt(internal.max_running_requests);
}

export const probeSglang: KindProbe = async (context) => {
  const info = await tryGet(context, SGLANG_MODEL_INFO_PATH, (r) => parseSglangModelInfo(jsonBody(r, SGLANG_MODEL_INFO_PATH)));
  if (info === null) return null;
  const cap = await tryGet(context, SGLANG_SERVER_INFO_PATH, (r) => parseSglangServerInfo(jsonBody(r, SGLANG_SERVER_INFO_PATH)));
  return { kind: 'sglang', detectedMaxconn: cap };
};
