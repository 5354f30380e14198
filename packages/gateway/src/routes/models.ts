import { GatewayError } from '@ai-lb/shared';
import type { Exchange } from '../http/exchange.ts';
import type { FleetCache } from '../routing/fleet-cache.ts';

/** GET /v1/models: served from the fleet cache's serialised list. */
export function modelsRoute(fleet: Pick<FleetCache, 'modelsJson'>) {
  return function handleModels(exchange: Exchange): void {
    exchange.send(200, { 'content-type': 'application/json; charset=utf-8' }, fleet.modelsJson());
  };
}

/** GET /v1/models/:id (what the SDKs' models.retrieve calls). */
export function modelRoute(fleet: Pick<FleetCache, 'modelEntry'>) {
  return function handleModel(exchange: Exchange, params: Readonly<Record<string, string>>): void {
    const { id } = params;
    const model = fleet.modelEntry(id);
    if (model === undefined)
      throw new GatewayError('model_not_found', `The model '${id.slice(0, 200)}' does not exist`, { param: 'model' });
    exchange.sendJson(200, model);
  };
}
