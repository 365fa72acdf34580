export type { CircuitState } from './circuit-breaker.js';
export { type TargetSeriesSettings, targetLabelBudget } from './metrics.js';
export { stateChangeLineBudget } from './state-change-log.js';
export { TenantUpstreamSockets } from './tenant-upstream-sockets.js';
export type * from './types.js';
export {
  createUpstreamSet,
  type InspectableUpstreamSet,
  type UpstreamSetDeps,
  type UpstreamTargetStatus,
} from './upstream-set.js';
