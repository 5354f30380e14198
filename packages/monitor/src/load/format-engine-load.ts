/**
 * Engine load readings as text, for `pnpm inventory` (and anything else that prints the
 * fleet): one cell per node ("run 3  wait 1  kv 7%", "loaded: llama3.1:8b"), a table of
 * every polled node, and the JSON shape.
 */
import type { EngineLoadReading, NodeId } from '@ai-lb/shared';

const LOADED_WIDTH = 50;

/** One node's reading in a few words; "-" when it has none. */
export function formatEngineLoad(reading: EngineLoadReading | undefined): string {
  if (reading === undefined) return '-';
  const parts: string[] = [];
  if (reading.running !== null) parts.push(`run ${reading.running}`);
  if (reading.waiting !== null) parts.push(`wait ${reading.waiting}`);
  if (reading.kvCacheUsage !== null) parts.push(`kv ${Math.round(reading.kvCacheUsage * 100)}%`);
  if (reading.loadedModels !== null) parts.push(`loaded: ${clip(reading.loadedModels.join(', ') || '(none)', LOADED_WIDTH)}`);
  return parts.length === 0 ? '-' : parts.join('  ');
}

export interface EngineLoadFailure {
  node: NodeId;
  reason: string;
}

/**
 * A table with one row per node: its reading, or why it has none. `nodes` fixes the
 * order (the inventory's node order); a node neither read nor failed has no load endpoint.
 */
export function formatEngineLoadTable(
  nodes: readonly NodeId[],
  readings: Readonly<Record<NodeId, EngineLoadReading>>,
  failures: readonly EngineLoadFailure[] = [],
): string {
  const failed = new Map(failures.map((f) => [f.node, f.reason]));
  const rows = [['NODE', 'ENGINE LOAD']];
  for (const node of nodes) {
    const reading = readings[node];
    const why = failed.get(node);
    rows.push([
      node,
      reading !== undefined ? formatEngineLoad(reading) : why !== undefined ? `unavailable (${why})` : 'not exposed by this kind',
    ]);
  }
  const width = Math.max(...rows.map((row) => row[0].length));
  return `${rows.map(([node, load]) => `${node.padEnd(width)}  ${load}`.trimEnd()).join('\n')}\n`;
}

/** The same for --json: readings keyed by node, failures with their reason. */
export function engineLoadJson(readings: Readonly<Record<NodeId, EngineLoadReading>>, failures: readonly EngineLoadFailure[] = []) {
  return { readings, failures };
}

function clip(text: string, width: number): string {
  return text.length <= width ? text : `${text.slice(0, width - 1)}…`;
}
