import { randomUUID } from 'node:crypto';
import type { RouteConfig } from '@vantageedge/shared/domain/gateway-config';
import { afterEach, describe, expect, it } from 'vitest';
import type { CompiledOrigin } from '../config/compiled-tenant.js';
import type { GatewayExchange } from '../pipeline/exchange.js';
import type { RouteStage } from '../pipeline/stage.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { createTrafficSplitPolicy } from './traffic-split-stage.js';

/**
 * What a split reads of a request costs one pass over it, whatever the number of its overrides and
 * origins: a client's Cookie of thousands of pairs against 10 cookie overrides, or a 16 KB sticky value
 * against 10 origins, cost a replica's event loop close to a millisecond per request when each override
 * scanned the header again and each origin's draw hashed the value again.
 */

const ORIGINS = Array.from({ length: 10 }, () => randomUUID());

function splitStage(overrides: number, originCount = ORIGINS.length): RouteStage {
  const snapshot = buildSnapshot({
    subdomain: 'split',
    origins: ORIGINS.map((id) => ({ id, targets: ['http://127.0.0.1:9'] })),
    routes: [
      {
        origin_id: ORIGINS[0]!,
        path_pattern: '/api/*',
        traffic_split: {
          origins: ORIGINS.slice(0, originCount).map((origin_id) => ({ origin_id, weight: 1 })),
          sticky: { cookie: 'session' },
          overrides: Array.from({ length: overrides }, (_, i) => ({
            cookie: `canary${i}`,
            value: 'yes',
            origin_id: ORIGINS[i % originCount]!,
          })),
        },
      },
    ],
  });
  const origins = new Map(
    snapshot.origins.map((config) => [config.id, { config } as unknown as CompiledOrigin]),
  );
  const stage = createTrafficSplitPolicy().compileRoute({
    tenant: snapshot.tenant,
    route: snapshot.routes[0] as RouteConfig,
    origins,
    warn: () => {},
    apiKeyQuotas: new Map(),
  });
  if (stage === null) throw new Error('no split stage');
  return stage;
}

function exchangeWith(cookie: string): GatewayExchange {
  return { req: { headers: { cookie } }, peerTrusted: false } as unknown as GatewayExchange;
}

const originalIndexOf = String.prototype.indexOf;
afterEach(() => {
  String.prototype.indexOf = originalIndexOf;
});

/** How often the stage looks for a separator in `cookie` while choosing an origin for it. */
function scansOf(stage: RouteStage, cookie: string): number {
  let scans = 0;
  String.prototype.indexOf = function (this: string, ...args: [string, number?]) {
    if (this.length === cookie.length && String(this) === cookie) scans++;
    return originalIndexOf.apply(this, args);
  };
  try {
    stage.onRequest!(exchangeWith(cookie));
  } finally {
    String.prototype.indexOf = originalIndexOf;
  }
  return scans;
}

describe('traffic split cookie keys', () => {
  const longCookie = Array.from({ length: 2000 }, (_, i) => `c${i}=v`).join('; ');

  it('reads a Cookie header of many pairs once, whatever the number of cookie overrides', () => {
    const one = scansOf(splitStage(1), longCookie);
    const ten = scansOf(splitStage(10), longCookie);
    expect(one).toBeGreaterThan(0);
    // One pass over the pairs for all the split's cookies: ten overrides cost what one does.
    expect(ten / one).toBeLessThan(1.2);
  });

  it('still sends each override to its origin and the sticky cookie by its value', () => {
    const stage = splitStage(10);
    const stickyOnly = exchangeWith('session=a');
    stage.onRequest!(stickyOnly);
    for (const i of [0, 4, 9]) {
      // The first pair of a name decides: canary<i>=no is no override's value, and the session picks.
      const first = exchangeWith(`theme=dark; canary${i}=no; canary${i}=yes; session=a`);
      stage.onRequest!(first);
      expect(first.origin?.config.id).toBe(stickyOnly.origin?.config.id);
      const chosen = exchangeWith(`theme=dark;canary${i}=yes ; session=a`);
      stage.onRequest!(chosen);
      expect(chosen.origin?.config.id).toBe(ORIGINS[i]);
    }
    const sticky = Array.from({ length: 5 }, () => {
      const exchange = exchangeWith(`a=1; session=user-42; b=2`);
      stage.onRequest!(exchange);
      return exchange.origin?.config.id;
    });
    expect(new Set(sticky).size).toBe(1);
  });
});

describe('traffic split sticky key', () => {
  const originalCharCodeAt = String.prototype.charCodeAt;
  afterEach(() => {
    String.prototype.charCodeAt = originalCharCodeAt;
  });

  /** Characters of `value` the stage reads to choose an origin for a request whose sticky cookie it is. */
  function charactersRead(stage: RouteStage, value: string): number {
    let reads = 0;
    String.prototype.charCodeAt = function (this: string, index: number) {
      if (this.length === value.length && String(this) === value) reads++;
      return originalCharCodeAt.call(this, index);
    };
    try {
      stage.onRequest!(exchangeWith(`session=${value}`));
    } finally {
      String.prototype.charCodeAt = originalCharCodeAt;
    }
    return reads;
  }

  // Each origin's draw hashed the whole value: 10 origins and a 16 KB key cost ten passes over it.
  it('reads a long sticky value no more with ten origins than with two', () => {
    const value = 'k'.repeat(4000);
    expect(charactersRead(splitStage(0, 10), value)).toBeLessThanOrEqual(
      charactersRead(splitStage(0, 2), value),
    );
  });

  it('sends a long value to one origin, and tells long values apart by their whole text', () => {
    const stage = splitStage(0, 10);
    const originOf = (value: string) => {
      const exchange = exchangeWith(`session=${value}`);
      stage.onRequest!(exchange);
      return exchange.origin?.config.id;
    };
    const prefix = 'k'.repeat(4000);
    expect(originOf(`${prefix}-1`)).toBe(originOf(`${prefix}-1`));
    const chosen = new Set(Array.from({ length: 40 }, (_, i) => originOf(`${prefix}-${i}`)));
    expect(chosen.size).toBeGreaterThan(3);
  });
});
