/**
 * `pnpm inventory` output: a plain-text table (one row per node, then the targets that
 * answered but are not usable) and a one-line summary; or the same data as JSON.
 */
import { surfacesOf, type EngineLoadReading, type NodeId, type NodeState } from '@ai-lb/shared';
import { engineLoadJson, formatEngineLoadTable, type LoadPollReport, type ScanReport } from '@ai-lb/monitor';

/** One engine load poll of the nodes found (what the gateway would route on). */
export type EngineLoads = Pick<LoadPollReport, 'readings' | 'failures'>;

const MODELS_WIDTH = 60;

export function formatInventoryTable(report: ScanReport, loads?: EngineLoads): string {
  const rows: string[][] = [['NODE', 'KIND', 'HEALTH', 'MODELS', 'CAPACITY', 'LATENCY']];
  for (const node of report.nodes) {
    rows.push([node.node, node.kind, node.healthy ? 'healthy' : 'unhealthy', models(node), capacity(node), latency(node)]);
  }
  for (const target of report.rejected) {
    rows.push([target.node, '-', 'rejected', clip(`${target.reason}: ${target.error}`, MODELS_WIDTH), '-', '-']);
  }
  const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => row[column].length)));
  const lines =
    rows.length > 1
      ? rows.map((row) =>
          row
            .map((cell, i) => cell.padEnd(widths[i]))
            .join('  ')
            .trimEnd(),
        )
      : [];
  if (report.nodes.length > 0) lines.push('', ...surfaceLines(report.nodes));
  if (loads !== undefined && report.nodes.length > 0) {
    lines.push(
      '',
      ...formatEngineLoadTable(
        report.nodes.map((n) => n.node),
        byNode(loads.readings),
        loads.failures,
      )
        .trimEnd()
        .split('\n'),
    );
  }
  const { closed, failed, gateway } = report.outcomes;
  lines.push(
    `${report.nodes.length} node(s) on ${report.targets} target(s) scanned in ${Math.round(report.durationMs)} ms` +
      ` (closed ${closed}, failed ${failed}, gateways skipped ${gateway})`,
  );
  return `${lines.join('\n')}\n`;
}

export function inventoryJson(report: ScanReport, written: boolean, loads?: EngineLoads) {
  return {
    nodes: report.nodes,
    ...(loads === undefined ? {} : { engineLoad: engineLoadJson(byNode(loads.readings), loads.failures) }),
    rejected: report.rejected,
    targets: report.targets,
    outcomes: report.outcomes,
    durationMs: Math.round(report.durationMs),
    written,
  };
}

/** The API surfaces each node serves (what the gateway routes to it), one line per node. */
function surfaceLines(nodes: readonly NodeState[]): string[] {
  const width = Math.max(4, ...nodes.map((n) => n.node.length));
  return [`${'NODE'.padEnd(width)}  API SURFACES`, ...nodes.map((n) => `${n.node.padEnd(width)}  ${surfacesOf(n).join(', ') || '(none)'}`)];
}

function models(node: NodeState): string {
  // Loaded models (Ollama /api/ps, LM Studio state) are starred.
  const names = node.models.map((m) => (node.loadedModels.includes(m) ? `${m}*` : m));
  return names.length === 0 ? '(none)' : clip(names.join(', '), MODELS_WIDTH);
}

function capacity(node: NodeState): string {
  return `${node.maxconn === 0 ? 'no cap' : node.maxconn} (${node.capacitySource})`;
}

function latency(node: NodeState): string {
  return node.latencyMs === null ? '-' : `${node.latencyMs} ms`;
}

function clip(text: string, width: number): string {
  return text.length <= width ? text : `${text.slice(0, width - 1)}…`;
}

function byNode(readings: readonly EngineLoadReading[]): Record<NodeId, EngineLoadReading> {
  return Object.fromEntries(readings.map((r) => [r.node, r]));
}
