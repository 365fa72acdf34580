import { useEffect } from 'preact/hooks';
import { useApi } from '../api/context.js';
import type { RolloutStatus } from '../api/resources.js';
import { Empty, ErrorNotice, Loading, Time } from '../ui/components.js';
import { useAsync } from '../ui/use-async.js';

/** Which gateway replicas run which config version of the tenant; refreshed every 2 s. */
export function RolloutTab({ tenantId }: { tenantId: string }) {
  const api = useApi();
  const rollout = useAsync(() => api.get<RolloutStatus>(`/api/v1/tenants/${tenantId}/rollout`), [tenantId]);
  useEffect(() => {
    const timer = window.setInterval(rollout.reload, 2_000);
    return () => window.clearInterval(timer);
  }, [rollout.reload]);

  const status = rollout.data;
  return (
    <div>
      <ErrorNotice error={rollout.error} />
      {!status && rollout.loading && <Loading what="the rollout" />}
      {status && (
        <>
          {status.publish_error ? (
            <p id="rollout-summary" class="notice error" role="alert">
              Config version <strong>{status.target_version}</strong> was not published, so no replica serves
              it: they keep the previous version until the next change. {status.publish_error}
            </p>
          ) : status.quarantined_since && status.deleted ? (
            <p id="rollout-summary" class="notice error" role="alert">
              The tenant's event at position <strong>{status.quarantined_since}</strong> could not be folded
              into its gateway config, so no replica serves the tenant until the snapshots are refolded with a
              fold that takes it.
            </p>
          ) : status.quarantined_since ? (
            <p id="rollout-summary" class="notice error" role="alert">
              The tenant's event at position <strong>{status.quarantined_since}</strong> could not be folded
              into its gateway config, so none of its changes from it on reach a replica: they keep version{' '}
              <strong>{status.target_version}</strong> until the snapshots are refolded.
            </p>
          ) : (
            <p id="rollout-summary" class={status.live_everywhere ? 'notice ok' : 'notice'}>
              Config version <strong>{status.target_version}</strong>{' '}
              {status.live_everywhere ? 'is live on every replica.' : 'is still rolling out.'}
            </p>
          )}
          {status.replicas.length === 0 ? (
            <Empty>No gateway replica has reported in.</Empty>
          ) : (
            <table id="rollout">
              <thead>
                <tr>
                  <th>Replica</th>
                  <th>Applied version</th>
                  <th>Up to date</th>
                  <th>Last seen</th>
                </tr>
              </thead>
              <tbody>
                {status.replicas.map((replica) => (
                  <tr key={replica.replica_id} class={replica.up_to_date ? '' : 'behind'}>
                    <td>
                      <code>{replica.replica_id}</code>
                    </td>
                    <td>{replica.applied_version ?? '—'}</td>
                    <td>{replica.up_to_date ? 'yes' : 'no'}</td>
                    <td>
                      <Time iso={replica.last_seen} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </>
      )}
    </div>
  );
}
