import { parseSettings } from '@vantageedge/shared/settings/load-settings';
import { describe, expect, it } from 'vitest';
import { controlPlaneSettings } from '../settings.js';
import {
  adminRateLimitsFromSettings,
  createAdminRateLimiter,
  DEFAULT_ADMIN_RATE_LIMITS,
} from './admin-rate-limits.js';

const REQUIRED = { API_KEY_PEPPER: 'p'.repeat(32) };

describe('admin rate limit settings', () => {
  it('default to DEFAULT_ADMIN_RATE_LIMITS; a rate of 0 turns a limit off', () => {
    expect(adminRateLimitsFromSettings(parseSettings(controlPlaneSettings, REQUIRED))).toEqual(
      DEFAULT_ADMIN_RATE_LIMITS,
    );
    const configured = parseSettings(controlPlaneSettings, {
      ...REQUIRED,
      CONTROL_PLANE_TENANT_COMMANDS_PER_MINUTE: '0',
      CONTROL_PLANE_USER_REQUESTS_PER_MINUTE: '120',
      CONTROL_PLANE_USER_REQUESTS_BURST: '7',
      CONTROL_PLANE_TENANT_EVENT_BYTES_PER_HOUR: '0',
    });
    expect(adminRateLimitsFromSettings(configured)).toEqual({
      tenantCommands: null,
      userRequests: { perMinute: 120, burst: 7 },
      tenantEventBytes: null,
    });
    const bytes = parseSettings(controlPlaneSettings, {
      ...REQUIRED,
      CONTROL_PLANE_TENANT_EVENT_BYTES_PER_HOUR: '3600',
      CONTROL_PLANE_TENANT_EVENT_BYTES_BURST: '500',
    });
    expect(adminRateLimitsFromSettings(bytes).tenantEventBytes).toEqual({ perMinute: 60, burst: 500 });
  });

  it.each([
    ['CONTROL_PLANE_TENANT_COMMANDS_PER_MINUTE', '-1'],
    ['CONTROL_PLANE_TENANT_COMMANDS_BURST', '0'],
    ['CONTROL_PLANE_USER_REQUESTS_PER_MINUTE', 'lots'],
    ['CONTROL_PLANE_USER_REQUESTS_BURST', '1.5'],
    ['CONTROL_PLANE_TENANT_EVENT_BYTES_PER_HOUR', '-1'],
    ['CONTROL_PLANE_TENANT_EVENT_BYTES_BURST', '0'],
  ])('refuses %s=%s naming it', (setting, value) => {
    expect(() => parseSettings(controlPlaneSettings, { ...REQUIRED, [setting]: value })).toThrow(
      new RegExp(setting),
    );
  });
});

describe('a request’s command budget', () => {
  it('charges each tenant once per request, however many streams the command writes', async () => {
    const limiter = createAdminRateLimiter({
      limits: { tenantCommands: { perMinute: 60, burst: 2 }, userRequests: null },
      now: () => 0,
    });
    const apply = limiter.commandBudget();
    for (let step = 0; step < 10; step++) await apply.charge('tenant-a');
    await limiter.commandBudget().charge('tenant-a');
    await expect(limiter.commandBudget().charge('tenant-a')).rejects.toMatchObject({
      kind: 'rate_limited',
      code: 'admin_rate_limited',
      field: 'tenant_commands_per_minute',
      retryAfterSeconds: 1,
    });
    await limiter.commandBudget().charge('tenant-b');
    // No user limit configured: nothing is counted.
    for (let i = 0; i < 100; i++) await limiter.chargeUser('user_a');
  });
});
