import { describe, expect, it } from 'vitest';
import { protectsAtLeastAsMuch, uniformProtection } from './route-protection.js';

const p = (auth_mode: string, required_scopes: string[] = [], require_tenant_org = true) =>
  ({ auth_mode, required_scopes, require_tenant_org }) as Parameters<typeof protectsAtLeastAsMuch>[0];

describe('protectsAtLeastAsMuch', () => {
  it.each([
    [p('apikey_required'), p('public'), true],
    [p('public'), p('apikey_required'), false],
    [p('jwt_required'), p('jwt_or_apikey'), true],
    [p('apikey_required'), p('jwt_or_apikey'), true],
    [p('jwt_or_apikey'), p('jwt_required'), false],
    [p('jwt_required'), p('apikey_required'), false],
    [p('service'), p('jwt_required'), false],
    [p('apikey_required', ['a', 'b']), p('apikey_required', ['a']), true],
    [p('apikey_required', ['a']), p('apikey_required', ['a', 'b']), false],
    [p('jwt_required', [], false), p('jwt_required', [], true), false],
    [p('jwt_required', [], true), p('jwt_required', [], false), true],
  ])('%j over %j: %s', (a, b, expected) => {
    expect(protectsAtLeastAsMuch(a, b)).toBe(expected);
  });

  it('knows when all routes are alike', () => {
    expect(uniformProtection([p('public'), p('public')])).toBe(true);
    expect(uniformProtection([p('public'), p('jwt_required')])).toBe(false);
    expect(uniformProtection([])).toBe(true);
  });
});
