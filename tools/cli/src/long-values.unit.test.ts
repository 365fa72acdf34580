import { afterEach, describe, expect, it } from 'vitest';
import { EXIT } from './exit-codes.js';
import { table } from './output.js';
import { closeStandInAdminApis, runCliAgainst, serveStandInAdminApi } from './testing/stand-in-admin-api.js';

/**
 * A tenant admin stores one long value — an origin's targets: up to 100 URLs of 2048 characters
 * (TENANT_MAX_STRING_LENGTH), about 200 KB in the TARGETS column — and a platform admin lists every
 * tenant's origins. The list must stay readable and printable: the long value is shown once, in its
 * own row, and the other rows keep their own widths; so must a table holding a 1 MB value (an answer
 * of something that is not the admin API, or of a platform with larger limits). A list of hundreds of
 * thousands of rows (every tenant's routes; or one page of them) is printed too.
 */

const MB = 1_000_000;
const LONG_URL = `https://backend.example.com/${'a'.repeat(MB)}`;

const columns = [
  { header: 'NAME', value: (row: { name: string; url: string }) => row.name },
  { header: 'TARGET', value: (row: { name: string; url: string }) => row.url },
  { header: 'NOTE', value: () => 'ok' },
];

describe('a table holding a 1 MB value', () => {
  it('shows the value whole, and pads no other row to its width', () => {
    const rows = Array.from({ length: 3000 }, (_, i) => ({
      name: `origin-${i}`,
      url: i === 1500 ? LONG_URL : `https://o${i}.example.com`,
    }));
    const text = table(rows, columns);
    const lines = text.split('\n');
    expect(lines).toHaveLength(3001);
    expect(lines[1501]).toContain(LONG_URL);
    expect(lines[1501]?.endsWith('  ok')).toBe(true);
    const others = lines.filter((_, index) => index !== 1501);
    expect(Math.max(...others.map((line) => line.length))).toBeLessThan(300);
    expect(text.length).toBeLessThan(LONG_URL.length + 3001 * 300);
  });

  it('lines up columns of ordinary widths as before', () => {
    const text = table(
      [
        { name: 'a', url: 'https://one.example.com' },
        { name: 'longer-name', url: 'https://two.example.com/path' },
      ],
      columns,
    );
    expect(text.split('\n')).toEqual([
      'NAME         TARGET                        NOTE',
      'a            https://one.example.com       ok',
      'longer-name  https://two.example.com/path  ok',
    ]);
  });

  it('lays out a list of hundreds of thousands of rows', () => {
    const rows = Array.from({ length: 300_000 }, (_, i) => ({ name: `r${i}`, url: 'https://x.example' }));
    const lines = table(rows, columns).split('\n');
    expect(lines).toHaveLength(300_001);
    expect(lines[300_000]).toBe('r299999  https://x.example  ok');
  });
});

describe('vantageedge get, against long answers', () => {
  afterEach(closeStandInAdminApis);

  function adminApi(path: string, data: unknown[]): Promise<string> {
    return serveStandInAdminApi((req, res) => {
      res.setHeader('content-type', 'application/json');
      if (req.url?.startsWith(`${path}?`)) {
        res.end(JSON.stringify({ data, next_cursor: null }));
        return;
      }
      res.statusCode = 404;
      res.end(JSON.stringify({ error: { code: 'not_found', message: 'no such path' } }));
    });
  }

  async function run(argv: string[], url: string) {
    const { code, stdout, stderr } = await runCliAgainst(argv, url);
    return { code, lines: stdout.split('\n'), stderr };
  }

  it('prints every tenant’s origins (exit 0), one origin’s 100 long targets once, the other rows at their own width', async () => {
    // What the admin API accepts from a tenant admin (one config apply): 100 targets of 2048 characters.
    const longTargets = Array.from({ length: 100 }, (_, t) => ({
      url: `https://t${String(t).padStart(2, '0')}.example.com/${'a'.repeat(2048 - 24)}`,
    }));
    const origins = Array.from({ length: 3000 }, (_, i) => ({
      id: `e3d7f6c4-3333-4d6d-8e8e-${String(i).padStart(12, '0')}`,
      name: `origin-${i}`,
      targets: i === 7 ? longTargets : [{ url: `https://o${i}.example.com` }],
      load_balancing: { algorithm: 'round_robin' },
    }));
    const { code, lines, stderr } = await run(['get', 'origins'], await adminApi('/api/v1/origins', origins));
    expect(stderr).toBe('');
    expect(code).toBe(EXIT.ok);
    expect(lines).toHaveLength(3001);
    const longCell = longTargets.map((target) => target.url).join(',');
    expect(longTargets[0]?.url).toHaveLength(2048);
    expect(lines.filter((line) => line.includes(longCell))).toHaveLength(1);
    expect(lines[1]).toMatch(
      /^e3d7f6c4-3333-4d6d-8e8e-000000000000 {2}origin-0 +https:\/\/o0\.example\.com +round_robin$/,
    );
    expect(lines[1]?.length).toBeLessThan(300);
  });

  it('prints a page of 300,000 items', async () => {
    const tenants = Array.from({ length: 300_000 }, (_, i) => ({ id: `t${i}`, name: 'n', subdomain: 's' }));
    const { code, lines, stderr } = await run(['get', 'tenants'], await adminApi('/api/v1/tenants', tenants));
    expect(stderr).toBe('');
    expect(code).toBe(EXIT.ok);
    expect(lines).toHaveLength(300_001);
    expect(lines[300_000]).toBe('t299999  n     s          -');
  });
});
