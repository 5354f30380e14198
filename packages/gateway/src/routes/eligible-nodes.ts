import { GatewayError, type Config } from '@ai-lb/shared';
import type { Exchange } from '../http/exchange.ts';
import type { FleetCache } from '../routing/fleet-cache.ts';
import { resolveModel } from '../routing/routing-rules.ts';

/**
 * GET /v1/eligible_nodes?model=ID: the nodes a request for ID could go to now (healthy,
 * serving it, circuit not open, below its cap — as the gateway's cache sees it). A
 * sentinel is resolved first; `resolved_model` says to what (an alias stays the alias:
 * its nodes are those listing one of its ids). An unknown model is a 404 — or 503
 * no_fleet while the fleet is not known in full — as the request itself would be.
 */
export function eligibleNodesRoute(
  config: Pick<Config, 'modelSentinels' | 'lmModel' | 'preferredModels' | 'autoModelStrategy' | 'retryAfterSecs'>,
  fleet: FleetCache,
) {
  return function handleEligibleNodes(exchange: Exchange): void {
    const requested = exchange.queryParam('model');
    if (requested === null || requested.trim() === '') {
      throw new GatewayError('invalid_request', "query parameter 'model' is required", { param: 'model' });
    }
    const { model } = resolveModel({
      requested,
      fallbackToLmModel: false,
      sentinels: config.modelSentinels,
      lmModel: config.lmModel,
      preferred: config.preferredModels,
      strategy: config.autoModelStrategy,
      requireAll: exchange.queryParam('require_all') === 'true',
      knownModel: (name) => fleet.knownModel(name),
      nodes: () => fleet.modelViews(),
      fleetAuthoritative: () => fleet.isAuthoritative(),
      retryAfterSecs: config.retryAfterSecs,
      isServedAlias: (name) => fleet.isServedAlias(name),
    });
    const data = fleet
      .healthyNodesFor(model)
      .filter((n) => fleet.isEligible(n))
      .map((n) => n.node);
    exchange.sendJson(200, { model: requested, resolved_model: model, data });
  };
}
