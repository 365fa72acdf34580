import { type AdminResponse, eventually, httpRequest, type TestSystem } from './harness.js';

/** The event-store position an admin command's answer reports (`x-event-position`). */
export function eventPosition(response: AdminResponse): bigint {
  return BigInt(response.headers.get('x-event-position') ?? '0');
}

/** The config version of the tenant a replica serves (its admin /status), or undefined before it has one. */
export async function servedVersion(
  replica: { adminUrl: string },
  tenantId: string,
): Promise<bigint | undefined> {
  const status = JSON.parse((await httpRequest(`${replica.adminUrl}/status`)).body) as {
    tenants?: Array<{ tenant_id: string; version: string }>;
  };
  const version = status.tenants?.find((tenant) => tenant.tenant_id === tenantId)?.version;
  return version === undefined ? undefined : BigInt(version);
}

/**
 * Until every replica serves the tenant at `position` (an admin answer's eventPosition) or later, so no
 * probe request of a test meets an older config.
 */
export async function whenServedEverywhere(
  replicas: ReadonlyArray<{ adminUrl: string }>,
  tenantId: string,
  position: bigint | string,
  system?: TestSystem,
): Promise<void> {
  await Promise.all(
    replicas.map((replica) =>
      eventually(
        `${replica.adminUrl} serves ${tenantId} at ${position} or later`,
        async () => ((await servedVersion(replica, tenantId)) ?? -1n) >= BigInt(position),
        { ...(system ? { system } : {}), timeoutMs: 30_000 },
      ),
    ),
  );
}
