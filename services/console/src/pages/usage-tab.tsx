export function UsageTab({ tenantId }: { tenantId: string }) {
  return <p class="muted">Usage of {tenantId}</p>;
}
