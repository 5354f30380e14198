import { expect, it } from 'vitest';
import { LONG_MS, type StoreUnderTest } from './contract-harness.ts';
import { RESPONSE_ID_MAX_CHARS } from './state-store.ts';

/** putResponseOwner / getResponseOwner: which node made a Responses API response. */
export function responseOwnerContract(sut: () => StoreUnderTest): void {
  it('remembers which node made a response; an unknown id is null', async () => {
    const { store } = sut();
    await store.putResponseOwner('resp_abc123', '10.0.0.1:8000', LONG_MS);
    await store.putResponseOwner('resp_ü-🦙', '[::1]:8080', LONG_MS);
    expect(await store.getResponseOwner('resp_abc123')).toBe('10.0.0.1:8000');
    expect(await store.getResponseOwner('resp_ü-🦙')).toBe('[::1]:8080');
    expect(await store.getResponseOwner('resp_unknown')).toBeNull();
  });

  it('the owner expires after its TTL; a later put replaces it', async () => {
    const { store, advance } = sut();
    await store.putResponseOwner('resp_short', 'a:1', 300);
    await store.putResponseOwner('resp_moved', 'a:1', LONG_MS);
    await store.putResponseOwner('resp_moved', 'b:1', LONG_MS);
    await advance(400);
    expect(await store.getResponseOwner('resp_short')).toBeNull();
    expect(await store.getResponseOwner('resp_moved')).toBe('b:1');
  });

  it('a peer reads what another instance wrote', async () => {
    const { store, peer } = sut();
    const other = await peer();
    await other.putResponseOwner('resp_shared', 'n:1', LONG_MS);
    expect(await store.getResponseOwner('resp_shared')).toBe('n:1');
  });

  it('refuses ids it must not keep: empty or over the length limit; reading one is simply null', async () => {
    const { store } = sut();
    const long = 'r'.repeat(RESPONSE_ID_MAX_CHARS + 1);
    await expect(store.putResponseOwner('', 'a:1', LONG_MS)).rejects.toThrow(TypeError);
    await expect(store.putResponseOwner(long, 'a:1', LONG_MS)).rejects.toThrow(TypeError);
    await expect(store.putResponseOwner('resp_x', 'a:1', 0)).rejects.toThrow(TypeError);
    expect(await store.getResponseOwner(long)).toBeNull();
  });
}
