/** mulberry32: a tiny seeded PRNG, so a workload's trace is the same on every run. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SYLLABLES = ['ka', 'lo', 'mi', 'ne', 'ru', 'sa', 'ti', 'vo', 'ze', 'pu', 'go', 'he'];

/** About `tokens` tokens (4 characters each) of made-up words. */
export function randomText(random: () => number, tokens: number): string {
  let text = '';
  while (text.length < tokens * 4)
    text += `${SYLLABLES[Math.floor(random() * SYLLABLES.length)]}${SYLLABLES[Math.floor(random() * SYLLABLES.length)]} `;
  return text.slice(0, tokens * 4);
}
