import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, vi } from 'vitest';
import { problemsOf } from '../testing/settings-problems.js';
import {
  booleanFlag,
  commaList,
  hostPortList,
  LOCAL_DEFAULTS,
  observabilitySettings,
  platformBaseDomainSettings,
  platformBaseDomains,
  port,
  postgresUrl,
  redisUrl,
} from './common-settings.js';
import { loadSettingsOrExit, parseSettings } from './load-settings.js';

describe('observability settings', () => {
  it('default to info logging and telemetry off', () => {
    expect(parseSettings(observabilitySettings, {})).toEqual({ LOG_LEVEL: 'info', OTEL_ENABLED: false });
  });

  it('accept the documented spellings', () => {
    expect(
      parseSettings(observabilitySettings, {
        LOG_LEVEL: 'debug',
        OTEL_ENABLED: 'yes',
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318',
        OTEL_SERVICE_NAME: 'gateway-a',
      }),
    ).toEqual({
      LOG_LEVEL: 'debug',
      OTEL_ENABLED: true,
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318',
      OTEL_SERVICE_NAME: 'gateway-a',
    });
  });

  it('name each malformed setting', () => {
    const problems = problemsOf(() =>
      parseSettings(observabilitySettings, {
        LOG_LEVEL: 'loud',
        OTEL_ENABLED: 'maybe',
        OTEL_EXPORTER_OTLP_ENDPOINT: 'collector',
      }),
    );
    expect(problems.map((p) => p.setting).sort()).toEqual([
      'LOG_LEVEL',
      'OTEL_ENABLED',
      'OTEL_EXPORTER_OTLP_ENDPOINT',
    ]);
  });
});

describe('setting validators', () => {
  it('accept the local defaults', () => {
    expect(
      parseSettings(
        { DATABASE_URL: postgresUrl, REDIS_URL: redisUrl, KAFKA_BROKERS: commaList },
        LOCAL_DEFAULTS,
      ),
    ).toEqual({
      DATABASE_URL: LOCAL_DEFAULTS.DATABASE_URL,
      REDIS_URL: LOCAL_DEFAULTS.REDIS_URL,
      KAFKA_BROKERS: ['127.0.0.1:59092'],
    });
  });

  it('split comma lists, trimming blanks', () => {
    expect(parseSettings({ L: commaList }, { L: ' a.example.com, ,b.example.com ' })).toEqual({
      L: ['a.example.com', 'b.example.com'],
    });
  });

  it('reject wrong schemes and out-of-range ports', () => {
    const problems = problemsOf(() =>
      parseSettings(
        { DATABASE_URL: postgresUrl, REDIS_URL: redisUrl, GATEWAY_PORT: port, FLAG: booleanFlag },
        { DATABASE_URL: 'postgres://', REDIS_URL: 'http://127.0.0.1:6379', GATEWAY_PORT: '-1', FLAG: 'on' },
      ),
    );
    expect(problems.map((p) => p.setting).sort()).toEqual([
      'DATABASE_URL',
      'FLAG',
      'GATEWAY_PORT',
      'REDIS_URL',
    ]);
  });
});

// Regression: the check read a repeated parameter's first value, node-postgres connects with its last.
it('DATABASE_URL: a file parameter given twice is checked at the value node-postgres uses, the last', () => {
  const readable = fileURLToPath(import.meta.url);
  const url = (first: string, last: string) =>
    `postgres://u@127.0.0.1:5432/db?sslcert=${encodeURIComponent(first)}&sslcert=${encodeURIComponent(last)}`;
  const problems = problemsOf(() =>
    parseSettings({ DATABASE_URL: postgresUrl }, { DATABASE_URL: url(readable, '/nonexistent/client.crt') }),
  );
  expect(problems).toEqual([
    { setting: 'DATABASE_URL', issue: expect.stringContaining('/nonexistent/client.crt: ENOENT') },
  ]);
  expect(
    parseSettings({ DATABASE_URL: postgresUrl }, { DATABASE_URL: url('/nonexistent/client.crt', readable) }),
  ).toMatchObject({ DATABASE_URL: expect.any(String) });
});

// Regression: node-postgres re-spells a URL holding a bare `%` (here in the password) before reading it,
// and then opens `%2F`-escaped paths as written; the check decoded them and read another file.
it('DATABASE_URL: a file parameter is checked at the path node-postgres opens, however the URL is spelt', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'common-settings-'));
  try {
    const decoded = path.join(dir, 'client.crt');
    const asWritten = path.join(dir, 'client%2Ecrt');
    writeFileSync(decoded, 'readable');
    const url = `postgres://u:100%secure@127.0.0.1:5432/db?sslcert=${dir}/client%2Ecrt`;
    expect(problemsOf(() => parseSettings({ DATABASE_URL: postgresUrl }, { DATABASE_URL: url }))).toEqual([
      { setting: 'DATABASE_URL', issue: `names a sslcert that cannot be read (${asWritten}: ENOENT)` },
    ]);
    rmSync(decoded);
    writeFileSync(asWritten, 'readable');
    expect(parseSettings({ DATABASE_URL: postgresUrl }, { DATABASE_URL: url })).toMatchObject({
      DATABASE_URL: url,
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

describe('platform base domains', () => {
  const read = (env: Record<string, string>) =>
    platformBaseDomains(parseSettings(platformBaseDomainSettings, env));

  it('read PLATFORM_BASE_DOMAINS, then the earlier name GATEWAY_BASE_DOMAINS, then the default', () => {
    expect(
      read({ PLATFORM_BASE_DOMAINS: 'Example.COM, edge.test', GATEWAY_BASE_DOMAINS: 'old.test' }),
    ).toEqual(['example.com', 'edge.test']);
    expect(read({ GATEWAY_BASE_DOMAINS: 'old.test' })).toEqual(['old.test']);
    expect(read({})).toEqual(['vantageedge.dev', 'localhost']);
  });

  it('refuse anything but domain names', () => {
    for (const value of ['*.example.com', 'example.com:80', 'https://example.com', ',']) {
      expect(() => parseSettings(platformBaseDomainSettings, { PLATFORM_BASE_DOMAINS: value })).toThrow(
        /PLATFORM_BASE_DOMAINS/,
      );
    }
  });
});

describe('hostPortList', () => {
  it('takes host:port addresses, a port-less one only with a default port', () => {
    expect(parseSettings({ BROKERS: hostPortList() }, { BROKERS: 'kafka-a:9092, 10.0.0.2:9093' })).toEqual({
      BROKERS: ['kafka-a:9092', '10.0.0.2:9093'],
    });
    expect(parseSettings({ NODES: hostPortList({ defaultPort: 6379 }) }, { NODES: 'redis-a' })).toEqual({
      NODES: ['redis-a'],
    });
  });

  it('takes IPv6 literals: bracketed before a port, bare only where a default port applies', () => {
    expect(parseSettings({ BROKERS: hostPortList() }, { BROKERS: '[::1]:9092,[fd00::2]:9093' })).toEqual({
      BROKERS: ['[::1]:9092', '[fd00::2]:9093'],
    });
    expect(
      parseSettings(
        { NODES: hostPortList({ defaultPort: 6379 }) },
        { NODES: '[::1], fd00::2, [fd00::3]:7000' },
      ),
    ).toEqual({ NODES: ['[::1]', 'fd00::2', '[fd00::3]:7000'] });
  });

  it('names the setting and the address that is not one', () => {
    for (const value of [
      'kafka-a',
      'kafka-a:0',
      'kafka-a:65536',
      'kafka-a:9o92',
      ':9092',
      'kafka://a:9092',
      ',',
      // A bare IPv6 literal has no port (its last group is not one), and brackets hold an IPv6 literal.
      'fd00::2',
      '[::1]',
      '[::1',
      '[kafka-a]:9092',
      '[::1]9092',
    ])
      expect(
        problemsOf(() => parseSettings({ BROKERS: hostPortList() }, { BROKERS: value })),
        value,
      ).toEqual([{ setting: 'BROKERS', issue: expect.stringMatching(/host:port/) }]);
  });

  it('never shows a part of a password, even one with a comma in it', () => {
    for (const value of [
      'kafka-user:planted-password@kafka-a:9092',
      'kafka-user:planted,password@kafka-a:9092',
      'kafka-a:9092,user:planted,password@kafka-b:9092',
    ]) {
      const problems = problemsOf(() => parseSettings({ BROKERS: hostPortList() }, { BROKERS: value }));
      expect(problems, value).toEqual([{ setting: 'BROKERS', issue: expect.stringMatching(/host:port/) }]);
      expect(JSON.stringify(problems), value).not.toMatch(/planted|password/);
    }
  });
});

describe('loadSettingsOrExit', () => {
  it('prints one line per bad setting, naming it, and exits 1', () => {
    const written: string[] = [];
    const write = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
      written.push(String(chunk));
      return true;
    });
    const exit = vi.spyOn(process, 'exit').mockImplementation((() => {
      throw new Error('exit');
    }) as never);
    try {
      expect(() =>
        loadSettingsOrExit(
          'gateway',
          { DATABASE_URL: postgresUrl, GATEWAY_PORT: port },
          { GATEWAY_PORT: 'x' },
        ),
      ).toThrow('exit');
      expect(exit).toHaveBeenCalledWith(1);
      expect(written.sort()).toEqual([
        'gateway: invalid configuration: DATABASE_URL is required\n',
        expect.stringMatching(/^gateway: invalid configuration: GATEWAY_PORT .+\n$/),
      ]);
    } finally {
      write.mockRestore();
      exit.mockRestore();
    }
  });

  it('returns the parsed settings when they are valid', () => {
    expect(loadSettingsOrExit('gateway', { GATEWAY_PORT: port.default(8000) }, {})).toEqual({
      GATEWAY_PORT: 8000,
    });
  });
});
