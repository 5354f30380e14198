import { Pool } from 'undici';
import { originOf, type NodeId, type NodeState } from '@ai-lb/shared';

export interface UpstreamPoolOptions {
  connectTimeoutMs: number;
}

/**
 * One keep-alive undici Pool per node, created on first use and closed when the node
 * leaves the fleet. Pools are only ever made from fleet records (host/port the monitor
 * recorded), so no client input can make the gateway dial an arbitrary address.
 */
export class UpstreamPools {
  private readonly pools = new Map<NodeId, Pool>();

  constructor(private readonly options: UpstreamPoolOptions) {}

  get(node: NodeState): Pool {
    let pool = this.pools.get(node.node);
    if (pool === undefined) {
      pool = new Pool(originOf(node), {
        connectTimeout: this.options.connectTimeoutMs,
        // The gateway runs its own head/idle timers (REQUEST_TIMEOUT_SECS, STREAM_IDLE_TIMEOUT_SECS);
        // undici's must never fire first with a different meaning.
        headersTimeout: 0,
        bodyTimeout: 0,
        keepAliveTimeout: 30_000,
      });
      this.pools.set(node.node, pool);
    }
    return pool;
  }

  /** Pools open now (one per node that was sent a request and is still in the fleet). */
  get size(): number {
    return this.pools.size;
  }

  /** Closes the pools of nodes no longer in the fleet; their in-flight requests finish first. */
  retain(nodes: ReadonlySet<NodeId>): void {
    for (const [id, pool] of this.pools) {
      if (nodes.has(id)) continue;
      this.pools.delete(id);
      void pool.close().catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(pools.map((pool) => pool.destroy().catch(() => undefined)));
  }
}
