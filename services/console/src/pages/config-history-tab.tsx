export function ConfigHistoryTab({ tenantId }: { tenantId: string }) {
  return <p class="muted">Config history of {tenantId}</p>;
}
