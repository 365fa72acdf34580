import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlPlaneHarness, startControlPlane } from '../testing/control-plane-harness.js';

let cp: ControlPlaneHarness;

beforeAll(async () => {
  cp = await startControlPlane();
});
afterAll(async () => {
  await cp?.close();
});

describe('the control plane’s request metrics', () => {
  // express restores req.baseUrl when an error leaves the command router (mounted at /api/v1), before
  // the app's error handler answers: the label was `/tenants/:id`, another route's series.
  it('label a refused command with its full route template', async () => {
    expect((await cp.request('DELETE', `/api/v1/tenants/${randomUUID()}`)).status).toBe(404);
    const text = await cp.metrics.metrics();
    const series = text
      .split('\n')
      .filter((line) => line.startsWith('vantageedge_control_plane_http_requests_total{'));
    expect(series).toContainEqual(expect.stringContaining('method="DELETE",route="/api/v1/tenants/:id"'));
    expect(series.join('\n')).not.toContain('route="/tenants/:id"');
  });
});
