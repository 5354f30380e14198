/**
 * A fake engine's prefix cache, modelled on vLLM's automatic prefix caching: the prompt is
 * cut into fixed blocks of tokens, each block named by a hash chained over every block
 * before it, and a prompt's cached part is its longest run of leading blocks still in the
 * cache. Blocks are evicted least-recently-used, so a node that serves many different
 * conversations forgets the oldest ones — exactly what routing for cache affinity fights.
 *
 * Tokens are approximated as 4 characters; only the prompt's full blocks are cached.
 */
import { createHash } from 'node:crypto';

export const CHARS_PER_TOKEN = 4;

export function tokensOf(text: string): number {
  return Math.ceil(text.length / CHARS_PER_TOKEN);
}

/** The chained hash of each full block of `text`, first block first. */
export function blockHashes(text: string, blockTokens: number): string[] {
  const blockChars = blockTokens * CHARS_PER_TOKEN;
  const hashes: string[] = [];
  let previous = '';
  for (let start = 0; start + blockChars <= text.length; start += blockChars) {
    previous = createHash('sha1')
      .update(previous)
      .update(text.slice(start, start + blockChars))
      .digest('base64');
    hashes.push(previous);
  }
  return hashes;
}

export class PrefixCache {
  /** Insertion order is recency: the first key is the least recently used block. */
  private readonly blocks = new Map<string, true>();

  constructor(
    readonly capacityBlocks: number,
    readonly blockTokens: number,
  ) {}

  /** Tokens of the prompt's leading blocks that are cached; touches them. */
  lookup(hashes: readonly string[]): number {
    let hit = 0;
    while (hit < hashes.length && this.blocks.has(hashes[hit])) hit++;
    for (let i = 0; i < hit; i++) this.touch(hashes[i]);
    return hit * this.blockTokens;
  }

  /** After a prefill: every block of the prompt is cached, evicting the oldest beyond capacity. */
  insert(hashes: readonly string[]): void {
    for (const hash of hashes) this.touch(hash);
    while (this.blocks.size > this.capacityBlocks) {
      const oldest = this.blocks.keys().next().value as string;
      this.blocks.delete(oldest);
    }
  }

  get size(): number {
    return this.blocks.size;
  }

  clear(): void {
    this.blocks.clear();
  }

  private touch(hash: string): void {
    this.blocks.delete(hash);
    this.blocks.set(hash, true);
  }
}
