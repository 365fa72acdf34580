import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_INFRA, uniqueSuffix } from '../testing/infrastructure.js';
import { childrenOf, recordSpans } from '../testing/recorded-spans.js';
import { createRedisClient, type RedisClient, whenReady } from './client.js';

/**
 * The control plane's Redis clients (`commandSpans`) make a CLIENT span per command sent under a
 * recording span (an admin request's), as its PostgreSQL statements do; the gateway's make none.
 * Regression test: no Redis command of the control plane was ever traced.
 */

const { telemetry, exporter, underSpan, finished } = recordSpans('redis-command-spans-test');
const key = `ve-test-command-spans-${uniqueSuffix()}`;

let traced: RedisClient;
let untraced: RedisClient;
beforeAll(async () => {
  traced = createRedisClient({ url: TEST_INFRA.redisUrl, name: 'traced-test', commandSpans: true });
  untraced = createRedisClient({ url: TEST_INFRA.redisUrl, name: 'untraced-test' });
  await Promise.all([whenReady(traced), whenReady(untraced)]);
});
afterAll(async () => {
  await traced.del(key);
  traced.disconnect();
  untraced.disconnect();
  await telemetry.shutdown();
});

describe('Redis command spans', () => {
  it('makes a CLIENT span per command under the active span, named by the command, without its arguments', async () => {
    exporter.reset();
    const parent = await underSpan('admin request', async () => {
      await traced.set(key, 'secret-value');
      await traced.get(key);
    });
    const commands = childrenOf(await finished(), parent);
    expect(commands.map((span) => span.name)).toEqual(['SET', 'GET']);
    expect(commands[0]?.kind).toBe(SpanKind.CLIENT);
    expect(commands[0]?.attributes).toMatchObject({
      'db.system.name': 'redis',
      'db.operation.name': 'SET',
      'server.address': '127.0.0.1',
    });
    const recorded = JSON.stringify(commands.map((span) => [span.attributes, span.events]));
    expect(recorded).not.toContain('secret-value');
    expect(recorded).not.toContain(key);
  });

  it("records a refused command's error prefix as error.type", async () => {
    exporter.reset();
    const parent = await underSpan('admin request', () => traced.incr(key));
    const [failed] = childrenOf(await finished(), parent);
    expect(failed?.name).toBe('INCR');
    expect(failed?.status.code).toBe(SpanStatusCode.ERROR);
    expect(failed?.attributes['error.type']).toBe('ERR');
  });

  it('makes no span without a recording span, nor for a client not asked to', async () => {
    exporter.reset();
    await traced.get(key);
    await underSpan('admin request', () => untraced.get(key));
    expect((await finished()).map((span) => span.name)).toEqual(['admin request']);
  });
});
