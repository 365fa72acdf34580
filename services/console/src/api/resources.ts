/** The admin API's resources as the console reads them (types only: the schemas stay on the server). */
export type {
  ApiKeyResource as ApiKey,
  CustomDomainResource as CustomDomain,
  OriginResource as Origin,
  RouteResource as Route,
  TenantResource as Tenant,
} from '@vantageedge/control-plane/schemas/resources';

export interface IssuedApiKey {
  id: string;
  name: string;
  key: string;
  key_prefix: string;
}

export interface AuditEntry {
  position: string;
  event_id: string;
  event_type: string;
  resource_type: string;
  resource_id: string;
  tenant_id: string | null;
  actor: string;
  occurred_at: string;
  correlation_id: string;
  data: unknown;
}

export interface ReplicaRollout {
  replica_id: string;
  applied_version: string | null;
  last_seen: string;
  up_to_date: boolean;
}

export interface RolloutStatus {
  tenant_id: string;
  target_version: string;
  deleted: boolean;
  projected_position: string;
  replicas: ReplicaRollout[];
  live_everywhere: boolean;
}
