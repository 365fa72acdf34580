import { mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import {
  createPrivatePostgres,
  type PrivatePostgres,
} from '@vantageedge/shared/event-store/postgres/testing/private-postgres';
import {
  type PrivateRedisServer,
  startPrivateRedisServer,
} from '@vantageedge/shared/redis/private-redis-server';
import { createPrivateKafka, type PrivateKafka } from '@vantageedge/shared/snapshot-bus/private-kafka';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  eventually,
  freePort,
  type GatewayReplica,
  REPO_ROOT,
  sleep,
  stopAllServices,
  TestSystem,
} from '../harness.js';

/**
 * The fault suite (`make test-faults`, the last step of `make test`): the whole product as separate
 * processes — control plane, both projectors, two gateway replicas — on PRIVATE PostgreSQL, Redis and
 * Kafka servers started here (never the shared ones), under continuous load. Redis, Kafka, PostgreSQL
 * and one origin target are killed and restarted in turn. It measures, per fault: requests sent,
 * 5xx outside the documented degradation policy (must be 0), admin commands accepted that are missing
 * afterwards from the read models or the gateways' snapshots (must be 0), and the p99 latency the
 * Redis outage adds. The table is printed and written to .data/fault-suite.json.
 */

const SUBDOMAIN = 'faults';
const WORKERS = 6;
const PASSIVE_THRESHOLD = 3;
const PHASE_MS = Number(process.env['FAULT_PHASE_MS'] ?? 4_000);

type Phase =
  | 'warm-up'
  | 'baseline'
  | 'redis down'
  | 'redis back'
  | 'kafka down'
  | 'kafka back'
  | 'postgres down'
  | 'postgres back'
  | 'target down'
  | 'target back';

interface RequestRecord {
  /** The phase the request started in (its row). */
  phase: Phase;
  /** The phase it ended in: a request in flight when a fault began belongs to that fault too. */
  endPhase: Phase;
  status: number;
  code: string;
  ms: number;
}

interface CommandRecord {
  phase: Phase;
  status: number;
  id?: string;
  key?: string;
}

/** An origin target on a fixed port, so it can be killed and started again where the gateways expect it. */
class KillableTarget {
  #server: http.Server | null = null;
  constructor(
    readonly name: string,
    readonly port: number,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const server = http.createServer((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'application/json', 'x-origin': this.name });
      res.end(JSON.stringify({ origin: this.name, path: req.url }));
    });
    server.keepAliveTimeout = 60_000;
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', () => resolve()));
    this.#server = server;
  }

  /** Like a crash: every open connection is cut. */
  async kill(): Promise<void> {
    const server = this.#server;
    this.#server = null;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

let redis: PrivateRedisServer;
let kafka: PrivateKafka;
let postgres: PrivatePostgres;
let system: TestSystem;
let replicas: GatewayReplica[] = [];
let targets: KillableTarget[] = [];

beforeAll(async () => {
  const [redisServer, kafkaServer, pgServer, portA, portB] = await Promise.all([
    startPrivateRedisServer(),
    createPrivateKafka().then(async (k) => {
      await k.start();
      return k;
    }),
    createPrivatePostgres(),
    freePort(),
    freePort(),
  ]);
  redis = redisServer;
  kafka = kafkaServer;
  postgres = pgServer;
  targets = [new KillableTarget('target-a', portA), new KillableTarget('target-b', portB)];
  await Promise.all(targets.map((target) => target.start()));
  system = await TestSystem.create({
    kafkaBrokers: kafka.brokers,
    redisUrl: redis.url,
    databaseServerUrl: postgres.url,
  });
  await system.startControlSide();
  replicas = await system.startGateways(2);
}, 240_000);

afterAll(async () => {
  await system?.close();
  await stopAllServices();
  await Promise.all([
    ...targets.map((target) => target.kill()),
    redis?.stop(),
    kafka?.destroy(),
    postgres?.destroy(),
  ]);
}, 120_000);

describe('fault suite: Redis, Kafka, PostgreSQL and an origin target killed and restarted under load', () => {
  it('serves within the documented degradation policy and loses no accepted command', async () => {
    // ---- the tenant: a rate-limited public route, a cached route and an API-key route over two targets
    const tenant = await system.admin('POST', '/api/v1/tenants', {
      body: { name: 'Fault Corp', subdomain: SUBDOMAIN },
    });
    expect(tenant.status, tenant.text).toBe(201);
    const tenantId = tenant.body['id'] as string;
    const origin = await system.admin('POST', '/api/v1/origins', {
      body: {
        tenant_id: tenantId,
        name: 'pair',
        targets: targets.map((target) => ({ url: target.url })),
        health_check: {
          active: { interval_seconds: 1, timeout_seconds: 0.5, healthy_threshold: 1 },
          passive: { unhealthy_threshold: PASSIVE_THRESHOLD },
        },
        circuit_breaker: { enabled: false },
      },
    });
    expect(origin.status, origin.text).toBe(201);
    const originId = origin.body['id'] as string;
    const routes = [
      {
        path_pattern: '/api/*',
        auth_mode: 'public',
        rate_limit: { requests_per_second: 100_000, burst: 100_000, on_store_failure: 'open' },
      },
      { path_pattern: '/cached/*', auth_mode: 'public', cache_policy: { ttl_seconds: 1 } },
      { path_pattern: '/keys/*', auth_mode: 'apikey_required' },
    ];
    for (const route of routes) {
      const created = await system.admin('POST', '/api/v1/routes', {
        body: { tenant_id: tenantId, origin_id: originId, ...route },
      });
      expect(created.status, created.text).toBe(201);
    }
    for (const replica of replicas) {
      await eventually(
        `${replica.id} serves the tenant`,
        async () => (await replica.get(SUBDOMAIN, '/api/ready')).status === 200,
        { system, timeoutMs: 60_000 },
      );
    }

    // ---- continuous load and a stream of admin commands, tagged with the current phase
    let phase: Phase = 'warm-up';
    let running = true;
    const requests: RequestRecord[] = [];
    const commands: CommandRecord[] = [];
    const load = Array.from({ length: WORKERS }, async (_, worker) => {
      for (let n = 0; running; n++) {
        const replica = replicas[(worker + n) % replicas.length]!;
        const pathname = n % 3 === 2 ? `/cached/item-${n % 20}` : `/api/w${worker}/${n}`;
        const started = performance.now();
        const at = phase;
        try {
          const response = await replica.get(SUBDOMAIN, pathname);
          let code = '';
          if (response.status >= 400) {
            try {
              code = (JSON.parse(response.body) as { error?: { code?: string } }).error?.code ?? '';
            } catch {
              code = 'not-json';
            }
          }
          const ms = performance.now() - started;
          requests.push({ phase: at, endPhase: phase, status: response.status, code, ms });
        } catch (error) {
          const ms = performance.now() - started;
          requests.push({ phase: at, endPhase: phase, status: 0, code: String(error), ms });
        }
      }
    });
    const commandLoop = (async () => {
      for (let n = 0; running; n++) {
        const at = phase;
        try {
          const issued = await system.admin('POST', '/api/v1/api-keys', {
            body: { tenant_id: tenantId, name: `fault-${n}` },
          });
          commands.push({
            phase: at,
            status: issued.status,
            ...(issued.status === 201
              ? { id: issued.body['id'] as string, key: issued.body['key'] as string }
              : {}),
          });
        } catch {
          commands.push({ phase: at, status: 0 });
        }
        await sleep(250);
      }
    })();

    const hold = () => sleep(PHASE_MS);
    await sleep(2_000);
    phase = 'baseline';
    await hold();
    phase = 'redis down';
    await redis.stop();
    await hold();
    await redis.start();
    phase = 'redis back';
    await hold();
    phase = 'kafka down';
    await kafka.stop();
    await hold();
    await kafka.start();
    phase = 'kafka back';
    await hold();
    phase = 'postgres down';
    await postgres.stop();
    await hold();
    await postgres.start();
    phase = 'postgres back';
    await hold();
    phase = 'target down';
    await targets[1]!.kill();
    await hold();
    await targets[1]!.start();
    phase = 'target back';
    await hold();
    running = false;
    await Promise.all([...load, commandLoop]);

    // ---- every command accepted at any point is in the read models and in both replicas' snapshots
    const accepted = commands.filter((command) => command.status === 201);
    const missing = new Set(accepted.map((command) => command.id!));
    await eventually(
      'every accepted command reaches the read models and both replicas',
      async () => {
        for (const command of accepted) {
          if (!missing.has(command.id!)) continue;
          const read = await system.admin('GET', `/api/v1/api-keys/${command.id}`);
          if (read.status !== 200) continue;
          const served = await Promise.all(
            replicas.map((replica) => replica.get(SUBDOMAIN, '/keys/check', { 'x-api-key': command.key! })),
          );
          if (served.every((response) => response.status === 200)) missing.delete(command.id!);
        }
        return missing.size === 0;
      },
      { timeoutMs: 90_000, intervalMs: 500 },
    ).catch(() => undefined);

    // ---- the report
    const within = (record: RequestRecord): boolean =>
      // A target that dies: requests in flight to it, and at most PASSIVE_THRESHOLD more per replica
      // before passive health checks eject it, are answered 502 (documented policy).
      record.status === 502 && (record.phase === 'target down' || record.endPhase === 'target down');
    const targetDown502 = requests.filter(within).length;
    const allowedTarget502 = replicas.length * PASSIVE_THRESHOLD + WORKERS;
    const phases: Phase[] = [
      'warm-up',
      'baseline',
      'redis down',
      'redis back',
      'kafka down',
      'kafka back',
      'postgres down',
      'postgres back',
      'target down',
      'target back',
    ];
    const rows = phases.map((name) => {
      const inPhase = requests.filter((r) => r.phase === name);
      const failures = inPhase.filter((r) => r.status >= 500 || r.status === 0);
      const outside = failures.filter((r) => !within(r)).length;
      const allowed = failures.filter(within).length;
      const issued = commands.filter((c) => c.phase === name);
      return {
        phase: name,
        requests: inPhase.length,
        // Past the allowance, 502s of the target outage are outside the policy too.
        five_xx_outside_policy:
          name === 'target down' ? outside + Math.max(0, targetDown502 - allowedTarget502) : outside,
        five_xx_within_policy: allowed,
        p99_ms: Number(
          percentile(
            inPhase.map((r) => r.ms),
            99,
          ).toFixed(1),
        ),
        commands_accepted: issued.filter((c) => c.status === 201).length,
        commands_refused: issued.filter((c) => c.status !== 201).length,
      };
    });
    const baselineP99 = rows.find((row) => row.phase === 'baseline')!.p99_ms;
    const redisP99 = rows.find((row) => row.phase === 'redis down')!.p99_ms;
    // Compared with the calmer of the phases around it (the machine's load drifts during the run).
    const aroundP99 = Math.min(baselineP99, rows.find((row) => row.phase === 'redis back')!.p99_ms);
    const report = {
      at: new Date().toISOString(),
      phase_ms: PHASE_MS,
      gateways: replicas.length,
      load_workers: WORKERS,
      requests_sent: requests.length,
      five_xx_outside_policy: rows.reduce((sum, row) => sum + row.five_xx_outside_policy, 0),
      commands_accepted: accepted.length,
      commands_missing_afterwards: missing.size,
      p99_added_during_redis_outage_ms: Number(Math.max(0, redisP99 - aroundP99).toFixed(1)),
      refused_statuses: [...new Set(commands.filter((c) => c.status !== 201).map((c) => c.status))],
      rows,
    };
    const header = `${'phase'.padEnd(14)}${'requests'.padStart(9)}${'5xx outside'.padStart(13)}${'5xx policy'.padStart(12)}${'p99 ms'.padStart(9)}${'cmds ok'.padStart(9)}${'cmds refused'.padStart(14)}`;
    const lines = rows.map(
      (row) =>
        `${row.phase.padEnd(14)}${String(row.requests).padStart(9)}${String(row.five_xx_outside_policy).padStart(13)}` +
        `${String(row.five_xx_within_policy).padStart(12)}${String(row.p99_ms).padStart(9)}` +
        `${String(row.commands_accepted).padStart(9)}${String(row.commands_refused).padStart(14)}`,
    );
    const summary = [
      `requests sent: ${report.requests_sent}`,
      `5xx outside the documented policy: ${report.five_xx_outside_policy}`,
      `commands accepted: ${report.commands_accepted}, missing afterwards from read models or snapshots: ${report.commands_missing_afterwards}`,
      `p99 added during the Redis outage: ${report.p99_added_during_redis_outage_ms} ms (p99 ${redisP99} ms vs ${aroundP99} ms around it)`,
    ];
    console.info(`\n[fault suite]\n${header}\n${lines.join('\n')}\n${summary.join('\n')}\n`);
    mkdirSync(path.join(REPO_ROOT, '.data'), { recursive: true });
    writeFileSync(path.join(REPO_ROOT, '.data', 'fault-suite.json'), `${JSON.stringify(report, null, 2)}\n`);

    const unexplained = requests.filter((r) => (r.status >= 500 || r.status === 0) && !within(r));
    expect(report.five_xx_outside_policy, JSON.stringify(unexplained.slice(0, 10))).toBe(0);
    expect(report.commands_missing_afterwards, system.tails()).toBe(0);
    expect(report.requests_sent).toBeGreaterThan(0);
  }, 240_000);
});
