import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { capacityContract } from './capacity.contract.ts';
import { circuitContract, stickyContract } from './circuit.contract.ts';
import type { MakeStoreUnderTest, StoreUnderTest } from './contract-harness.ts';
import { engineLoadContract } from './engine-load.contract.ts';
import { responseOwnerContract } from './response-owner.contract.ts';
import { fleetContract } from './fleet.contract.ts';
import { monitorStateContract } from './monitor-state.contract.ts';
import { queueContract } from './queue.contract.ts';
import { inflightSharingContract, outcomeBatchContract } from './replica-reports.contract.ts';
import { reserveContract } from './reserve.contract.ts';

export type { MakeStoreUnderTest, StoreUnderTest } from './contract-harness.ts';

/**
 * The one suite every StateStore passes (the hono router pattern: one interface, one shared
 * case list). Each test gets a fresh store on fresh shared state; time-based cases call
 * `advance`, which moves an injected clock (memory) or really waits tens of ms (Redis).
 */
export function describeStateStoreContract(name: string, makeStore: MakeStoreUnderTest): void {
  describe(`StateStore contract: ${name}`, () => {
    let current: StoreUnderTest | undefined;
    const sut = () => {
      if (current === undefined) throw new Error('store not ready');
      return current;
    };
    beforeEach(async () => {
      current = await makeStore();
    });
    afterEach(async () => {
      await current?.close();
      current = undefined;
    });

    describe('fleet', () => fleetContract(sut));
    describe('fleet freshness, scans and the monitor lease', () => monitorStateContract(sut));
    describe('capacity', () => capacityContract(sut));
    describe('circuit breaker', () => circuitContract(sut));
    describe('sticky sessions', () => stickyContract(sut));
    describe('fleet-wide queue', () => queueContract(sut));
    describe('engine load', () => engineLoadContract(sut));
    describe('response owners', () => responseOwnerContract(sut));
    describe('in-flight counts shared between replicas', () => inflightSharingContract(sut));
    describe('circuit outcomes in batches', () => outcomeBatchContract(sut));
    describe('reserves: slots a replica hands out itself', () => reserveContract(sut));
    describe('health', () => {
      it('a store on reachable shared state is not degraded and counts no failed calls', async () => {
        const { store } = sut();
        await store.ping();
        await store.listNodes();
        expect(store.health()).toEqual({ degraded: false, reason: null, remoteFailures: 0 });
      });
    });
  });
}
