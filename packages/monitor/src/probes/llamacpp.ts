/**
 * llama.cpp server: `GET /props` carries `total_slots` (its --parallel setting: the
 * number of requests it decodes at once) next to `default_generation_settings`; older
 * builds without total_slots still answer `GET /slots` with one entry per slot (unless
 * started with --no-slots).
 */
import { badShape, isRecord, jsonBody, positiveInt, tryGet, type KindProbe } from './probe-context.ts';

export const LLAMACPP_PROPS_PATH = '/props';
export const LLAMACPP_SLOTS_PATH = '/slots';

export interface LlamaCppProps {
  totalSlots: number | null;
  modelPath: string | null;
}

export function parseLlamaCppProps(doc: unknown): LlamaCppProps {
  if (!isRecord(doc) || !(isRecord(doc.default_generation_settings) || 'total_slots' in doc)) {
    throw badShape(LLAMACPP_PROPS_PATH, 'llama.cpp props with default_generation_settings or total_slots');
  }
  return {
    totalSlots: positiveInt(doc.total_slots),
    modelPath: typeof doc.model_path === 'string' ? doc.model_path : null,
  };
}

/** The slot count: the length of the /slots array. */
export function parseLlamaCppSlots(doc: unknown): number {
  if (!Array.isArray(doc) || doc.length === 0 || !doc.every((slot) => isRecord(slot) && 'id' in slot)) {
    throw badShape(LLAMACPP_SLOTS_PATH, 'a non-empty array of slots');
  }
  return doc.length;
}

export const probeLlamaCpp: KindProbe = async (context) => {
  const props = await tryGet(context, LLAMACPP_PROPS_PATH, (r) => parseLlamaCppProps(jsonBody(r, LLAMACPP_PROPS_PATH)));
  if (props === null) return null;
  const slots =
    props.totalSlots ?? (await tryGet(context, LLAMACPP_SLOTS_PATH, (r) => parseLlamaCppSlots(jsonBody(r, LLAMACPP_SLOTS_PATH))));
  return { kind: 'llamacpp', detectedMaxconn: slots };
};
