import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseEnv } from 'node:util';
import { ORIGIN_BLOCKED_CIDRS_ALLOWING_LOOPBACK } from '@vantageedge/shared/net/origin-address-policy';
import { describe, expect, it } from 'vitest';
import {
  DEV_ADMIN_USER_ID,
  DEV_API_KEY_PEPPER,
  describeParts,
  devEnvironment,
  exposedListeners,
  REPO_ROOT,
} from './dev-settings.js';
import { defaultDevUser } from './dev-token.js';

describe('make dev settings', () => {
  it('fills every unset setting with the embedded, in-memory dev defaults', () => {
    const env = devEnvironment({});
    expect(env).toMatchObject({
      CONTROL_PLANE_PORT: '8080',
      GATEWAY_PORT: '8000',
      GATEWAY_ADMIN_PORT: '8001',
      API_KEY_PEPPER: DEV_API_KEY_PEPPER,
      VANTAGEEDGE_DEV_MODE: 'true',
      PLATFORM_ADMIN_USER_IDS: DEV_ADMIN_USER_ID,
      SNAPSHOT_BUS: 'memory',
      // the demo origin is on 127.0.0.1
      ORIGIN_BLOCKED_CIDRS: ORIGIN_BLOCKED_CIDRS_ALLOWING_LOOPBACK.join(','),
    });
    expect(env['ORIGIN_BLOCKED_CIDRS']).not.toContain('127.0.0.0/8');
    expect(env['ORIGIN_BLOCKED_CIDRS']).toContain('169.254.0.0/16');
    expect(env['DATABASE_URL']).toBeUndefined();
    expect(env['REDIS_URL']).toBeUndefined();
    expect(describeParts(env)).toEqual([
      'database:      embedded PostgreSQL',
      'event store:   PostgreSQL',
      'snapshot bus:  in memory',
      'limits, cache: in memory',
    ]);
  });

  it('keeps every setting given in the environment or .env (empty means unset)', () => {
    const env = devEnvironment({
      GATEWAY_PORT: '9000',
      API_KEY_PEPPER: 'my-own-pepper-of-at-least-32-characters!!',
      PLATFORM_ADMIN_USER_IDS: 'user_alice,user_bob',
      VANTAGEEDGE_DEV_MODE: 'false',
      CONTROL_PLANE_PORT: '',
      DATABASE_URL: 'postgres://u:secret@db.example:5432/ve',
      REDIS_URL: 'redis://127.0.0.1:6379',
    });
    expect(env['GATEWAY_PORT']).toBe('9000');
    expect(env['CONTROL_PLANE_PORT']).toBe('8080');
    expect(env['API_KEY_PEPPER']).toBe('my-own-pepper-of-at-least-32-characters!!');
    expect(env['VANTAGEEDGE_DEV_MODE']).toBe('false');
    expect(defaultDevUser(env)).toBe('user_alice');
    const parts = describeParts(env);
    expect(parts[0]).toContain('postgres://u:***@db.example:5432/ve');
    expect(parts[3]).toContain('Redis');
  });

  it.each([
    ['EVENTSTOREDB_URL', 'esdb://admin:changeit@esdb.example:2113?tls=false'],
    ['EVENTSTOREDB_URL', 'esdb+discover://admin:changeit@a.example:2113,b.example:2113'],
    ['DATABASE_URL', 'postgres://u:changeit@a.example:5432,b.example:5432/ve'],
  ])('never prints the password of %s=%s in the banner', (setting, url) => {
    const parts = describeParts(devEnvironment({ EVENT_STORE: 'eventstoredb', [setting]: url }));
    const banner = parts.join('\n');
    expect(banner).not.toContain('changeit');
    expect(banner).toContain(url.replace('changeit', '***'));
  });

  it('uses Kafka for snapshots when KAFKA_BROKERS is set, unless SNAPSHOT_BUS says otherwise', () => {
    expect(devEnvironment({ KAFKA_BROKERS: '127.0.0.1:59092' })['SNAPSHOT_BUS']).toBe('kafka');
    expect(devEnvironment({ KAFKA_BROKERS: '127.0.0.1:59092', SNAPSHOT_BUS: 'memory' })['SNAPSHOT_BUS']).toBe(
      'memory',
    );
  });
});

describe('make dev with .env.example copied to .env', () => {
  const example = parseEnv(readFileSync(path.join(REPO_ROOT, '.env.example'), 'utf8')) as Record<
    string,
    string
  >;

  it('keeps every listener on the loopback address', () => {
    const env = devEnvironment(example);
    for (const setting of ['CONTROL_PLANE_HOST', 'GATEWAY_HOST', 'GATEWAY_ADMIN_HOST']) {
      expect({ setting, host: env[setting] }).toEqual({ setting, host: '127.0.0.1' });
    }
    expect(exposedListeners(env)).toEqual([]);
  });
});

describe('the banner’s warning', () => {
  it('names each listener set to an address other machines reach', () => {
    expect(exposedListeners(devEnvironment({}))).toEqual([]);
    expect(
      exposedListeners(
        devEnvironment({
          CONTROL_PLANE_HOST: '0.0.0.0',
          GATEWAY_HOST: '::1',
          GATEWAY_ADMIN_HOST: '192.0.2.7',
        }),
      ),
    ).toEqual(['CONTROL_PLANE_HOST=0.0.0.0', 'GATEWAY_ADMIN_HOST=192.0.2.7']);
  });
});
