import { describe, expect, it } from 'vitest';
import { CONFIG_EVENT_TYPES, summarize } from './config-history.js';

describe('the config history summaries', () => {
  it("lists a key's quota change, as set, changed or removed", () => {
    expect(CONFIG_EVENT_TYPES).toContain('ApiKeyQuotaChanged');
    expect(summarize('ApiKeyQuotaChanged', { quota: { requests_per_day: 1000 } })).toBe(
      'API key quota set to 1000/day',
    );
    expect(
      summarize('ApiKeyQuotaChanged', { quota: { requests_per_day: 10, requests_per_month: 200 } }),
    ).toBe('API key quota set to 10/day, 200/month');
    expect(summarize('ApiKeyQuotaChanged', { quota: null })).toBe('API key quota removed');
  });
});
