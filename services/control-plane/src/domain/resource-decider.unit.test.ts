import { originConfig, routeConfig } from '@vantageedge/shared/domain/gateway-config';
import { describe, expect, it } from 'vitest';
import type { Decider, FoldableEvent } from './decision.js';
import { originDecider } from './origin.js';
import { routeDecider } from './route.js';

function given<State, Command>(decider: Decider<State, Command>, ...commands: Command[]): State {
  let state = decider.initialState();
  commands.forEach((command, i) => {
    for (const event of decider.decide(command, state).events) {
      state = decider.evolve(state, {
        ...event,
        metadata: { occurred_at: `2026-01-0${i + 1}T00:00:00.000Z` },
        revision: BigInt(i),
      } as FoldableEvent);
    }
  });
  return state;
}

const { id: _o, ...originConfigState } = originConfig.parse({
  id: '00000000-0000-4000-8000-000000000001',
  name: 'api',
  targets: [{ url: 'https://api.example.com' }],
});
const origin = { ...originConfigState, origin_id: 'o1', tenant_id: 't1' };
const { id: _r, ...routeConfigState } = routeConfig.parse({
  id: '00000000-0000-4000-8000-000000000002',
  origin_id: '00000000-0000-4000-8000-000000000001',
  path_pattern: '/a/*',
  auth_mode: 'public',
});
const route = { ...routeConfigState, route_id: 'r1', tenant_id: 't1' };

describe('the generic resource decider (origins and routes)', () => {
  it('creates, updates only what changed, and tombstones with the resource id and tenant', () => {
    expect(
      originDecider.decide({ type: 'Create', data: origin }, originDecider.initialState()).events,
    ).toEqual([{ type: 'OriginCreated', data: origin }]);
    const created = given(routeDecider, { type: 'Create', data: route });
    expect(
      routeDecider.decide({ type: 'Update', changes: { priority: 5, auth_mode: 'public' } }, created).events,
    ).toEqual([{ type: 'RouteUpdated', data: { ...route, priority: 5, changed_fields: ['priority'] } }]);
    expect(routeDecider.decide({ type: 'Update', changes: { auth_mode: 'public' } }, created).events).toEqual(
      [],
    );
    expect(routeDecider.decide({ type: 'Delete' }, created).events).toEqual([
      { type: 'RouteDeleted', data: { route_id: 'r1', tenant_id: 't1' } },
    ]);
    expect(
      originDecider.decide({ type: 'Delete' }, given(originDecider, { type: 'Create', data: origin })).events,
    ).toEqual([{ type: 'OriginDeleted', data: { origin_id: 'o1', tenant_id: 't1' } }]);
  });

  it('tracks revision and timestamps, refuses a second create and anything on a tombstone', () => {
    const updated = given(
      originDecider,
      { type: 'Create', data: origin },
      { type: 'Update', changes: { name: 'renamed' } },
    );
    expect(updated).toMatchObject({
      status: 'active',
      revision: 1n,
      created_at: '2026-01-01T00:00:00.000Z',
      updated_at: '2026-01-02T00:00:00.000Z',
      data: { name: 'renamed' },
    });
    expect(() => originDecider.decide({ type: 'Create', data: origin }, updated)).toThrow(
      expect.objectContaining({ kind: 'conflict' }),
    );
    const deleted = given(originDecider, { type: 'Create', data: origin }, { type: 'Delete' });
    expect(deleted.status).toBe('deleted');
    for (const command of [{ type: 'Update', changes: { name: 'x' } }, { type: 'Delete' }] as const) {
      expect(() => originDecider.decide(command, deleted)).toThrow(
        expect.objectContaining({ kind: 'not_found', message: 'origin not found' }),
      );
    }
  });
});
