import { expect, test } from 'vitest';
import { loadConfig } from '@ai-lb/shared';
import { createCapacityResolver } from './resolve-capacity.ts';

const resolverFor = (env: Record<string, string>) => createCapacityResolver(loadConfig(env));

test('MAXCONN_MAP over detected over DEFAULT_MAXCONN', () => {
  const resolve = resolverFor({ MAXCONN_MAP: '10.0.0.1:8080=7', DEFAULT_MAXCONN: '2' });
  expect(resolve('10.0.0.1:8080', 4)).toEqual({ maxconn: 7, capacitySource: 'map' });
  expect(resolve('10.0.0.2:8080', 4)).toEqual({ maxconn: 4, capacitySource: 'detected' });
  expect(resolve('10.0.0.2:8080', null)).toEqual({ maxconn: 2, capacitySource: 'default' });
});

test('a map entry of 0 means "no cap" for that node, even when the server reports slots', () => {
  expect(resolverFor({ MAXCONN_MAP: 'gpu:1234=0' })('gpu:1234', 8)).toEqual({ maxconn: 0, capacitySource: 'map' });
});

test('map keys are matched in canonical form (case, IPv6 spelling)', () => {
  const resolve = resolverFor({ MAXCONN_MAP: 'GPU-Box:1234=3;[0:0::1]:8080=5' });
  expect(resolve('gpu-box:1234', null)).toEqual({ maxconn: 3, capacitySource: 'map' });
  expect(resolve('[::1]:8080', null)).toEqual({ maxconn: 5, capacitySource: 'map' });
});

test('DEFAULT_MAXCONN defaults to 0: no cap', () => {
  expect(resolverFor({})('a:1', null)).toEqual({ maxconn: 0, capacitySource: 'default' });
});
