import { chmod, lstat, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from './cli.js';
import { applyKey } from './commands/config.js';
import { EXIT } from './exit-codes.js';
import { table } from './output.js';
import { formatChanges, summary } from './plan-format.js';
import { configPath, readProfiles, removeProfile, saveProfile } from './profiles.js';

const folders: string[] = [];
afterEach(async () => {
  await Promise.all(folders.splice(0).map((folder) => rm(folder, { recursive: true, force: true })));
});
async function tempFolder(): Promise<string> {
  const folder = await mkdtemp(path.join(os.tmpdir(), 'vantageedge-cli-'));
  folders.push(folder);
  return folder;
}

async function run(argv: string[], env: NodeJS.ProcessEnv = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, {
    env,
    stdout: (text) => out.push(text),
    stderr: (text) => err.push(text),
    stdin: async () => '',
  });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('profiles', () => {
  it('keeps one login per profile in an owner-only file', async () => {
    const file = path.join(await tempFolder(), 'nested', 'config.json');
    await saveProfile(file, 'default', { url: 'http://a.test', token: 'token-a' });
    await saveProfile(file, 'staging', { url: 'http://b.test', token: 'token-b' });
    expect((await readProfiles(file)).profiles).toEqual({
      default: { url: 'http://a.test', token: 'token-a' },
      staging: { url: 'http://b.test', token: 'token-b' },
    });
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(await removeProfile(file, 'staging')).toBe(true);
    expect(Object.keys((await readProfiles(file)).profiles)).toEqual(['default']);
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual({
      profiles: { default: { url: 'http://a.test', token: 'token-a' } },
    });
  });

  it('takes a profile named like a member every object has (toString, constructor, __proto__) as any other', async () => {
    const file = path.join(await tempFolder(), 'config.json');
    await saveProfile(file, 'default', { url: 'http://a.test', token: 'token-a' });
    for (const name of ['toString', 'constructor', '__proto__']) {
      const logout = await run(['--profile', name, 'logout'], { VANTAGEEDGE_CONFIG: file });
      expect(logout.out).toBe(`Profile ${name} was not logged in.`);
      const read = await run(['--profile', name, 'get', 'tenants'], { VANTAGEEDGE_CONFIG: file });
      expect(read.code).toBe(EXIT.auth);
      expect(read.err).toMatch(/^vantageedge: not logged in \(profile /);
    }
    await saveProfile(file, '__proto__', { url: 'http://b.test', token: 'token-b' });
    const saved = [
      ['default', { url: 'http://a.test', token: 'token-a' }],
      ['__proto__', { url: 'http://b.test', token: 'token-b' }],
    ];
    expect(Object.entries(JSON.parse(await readFile(file, 'utf8'))['profiles'])).toEqual(saved);
    expect(Object.entries((await readProfiles(file)).profiles)).toEqual(saved);
    expect(await removeProfile(file, '__proto__')).toBe(true);
    expect(Object.keys((await readProfiles(file)).profiles)).toEqual(['default']);
  });

  it('reports a profile file it cannot read or write in one line with exit 2, no stack trace', async () => {
    const folder = await tempFolder();
    const nullFile = path.join(folder, 'null.json');
    await writeFile(nullFile, 'null\n');
    for (const file of [folder, nullFile]) {
      const read = await run(['get', 'tenants'], { VANTAGEEDGE_CONFIG: file });
      expect(read.err).not.toMatch(/\n\s+at /);
      expect([EXIT.usage, EXIT.auth]).toContain(read.code);
      expect(read.err.split('\n')).toHaveLength(1);
    }
    const isDirectory = await run(['get', 'tenants'], { VANTAGEEDGE_CONFIG: folder });
    expect(isDirectory.code).toBe(EXIT.usage);
    expect(isDirectory.err).toContain(`cannot read ${folder}`);
    const underAFile = path.join(nullFile, 'vantageedge', 'config.json');
    await expect(
      saveProfile(underAFile, 'default', { url: 'http://a.test', token: 'token-a' }),
    ).rejects.toThrow(`cannot save the login in ${underAFile}`);
  });

  // Regression: the file was written through a fixed name beside it (config.json.<pid>.tmp), opened
  // as it was found: a file left there (by a crash, or another user of a shared folder) kept its own
  // mode for the token, and a symbolic link there had the token written wherever it pointed.
  it('writes the token into a new owner-only file, whatever is found at a name beside it', async () => {
    const folder = await tempFolder();
    const file = path.join(folder, 'config.json');
    const elsewhere = path.join(folder, 'readable-by-others.json');
    await writeFile(elsewhere, '', { mode: 0o644 });
    await symlink(elsewhere, `${file}.${process.pid}.tmp`);
    await saveProfile(file, 'default', { url: 'https://a.test', token: 'token-a' });
    expect(await readFile(elsewhere, 'utf8')).toBe('');
    expect((await lstat(file)).isFile()).toBe(true);

    await rm(`${file}.${process.pid}.tmp`);
    await writeFile(`${file}.${process.pid}.tmp`, '', { mode: 0o644 });
    await chmod(`${file}.${process.pid}.tmp`, 0o644);
    await saveProfile(file, 'staging', { url: 'https://b.test', token: 'token-b' });
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(Object.keys((await readProfiles(file)).profiles)).toEqual(['default', 'staging']);
  });

  it('replaces a symbolic link at its own path instead of writing through it', async () => {
    const folder = await tempFolder();
    const file = path.join(folder, 'config.json');
    const elsewhere = path.join(folder, 'shared.json');
    await writeFile(elsewhere, '{"profiles":{}}\n', { mode: 0o644 });
    await symlink(elsewhere, file);
    await saveProfile(file, 'default', { url: 'https://a.test', token: 'token-a' });
    expect(await readFile(elsewhere, 'utf8')).toBe('{"profiles":{}}\n');
    expect((await lstat(file)).mode & 0o777).toBe(0o600);
  });

  it('lives in $VANTAGEEDGE_CONFIG, else under $XDG_CONFIG_HOME, else ~/.config', () => {
    expect(configPath({ VANTAGEEDGE_CONFIG: '/x/ve.json' })).toBe('/x/ve.json');
    expect(configPath({ XDG_CONFIG_HOME: '/xdg' })).toBe('/xdg/vantageedge/config.json');
    expect(configPath({})).toBe(path.join(os.homedir(), '.config', 'vantageedge', 'config.json'));
  });
});

describe('exit codes', () => {
  it('is 3 without a login, 2 for an unknown command or flag, 7 when the API is unreachable', async () => {
    const env = { VANTAGEEDGE_CONFIG: path.join(await tempFolder(), 'none.json') };
    const notLoggedIn = await run(['get', 'tenants'], env);
    expect(notLoggedIn.code).toBe(EXIT.auth);
    expect(notLoggedIn.err).toContain('not logged in');
    expect((await run(['frobnicate'], env)).code).toBe(EXIT.usage);
    expect((await run(['get', 'tenants', '--bogus'], env)).code).toBe(EXIT.usage);
    expect((await run(['diff'], env)).code).toBe(EXIT.usage);
    const unreachable = await run(['get', 'tenants'], {
      ...env,
      VANTAGEEDGE_URL: 'http://127.0.0.1:1',
      VANTAGEEDGE_TOKEN: 't',
    });
    expect(unreachable.code).toBe(EXIT.unavailable);
    expect(unreachable.err).toContain('cannot reach the admin API');
  });

  // The URL's trailing slashes were trimmed with a regex that tried every slash of a run as the start
  // of the trailing run: a URL with a long run of slashes inside took seconds before the first request.
  it('reads a login URL with a long run of slashes in one pass, then says the API is unreachable', async () => {
    const env = { VANTAGEEDGE_CONFIG: path.join(await tempFolder(), 'none.json') };
    const url = `http://127.0.0.1:1${'/'.repeat(160_000)}api`;
    const unreachable = await run(['login', '--url', url, '--token', 't'], env);
    expect(unreachable.code).toBe(EXIT.unavailable);
    expect(unreachable.err).toContain('cannot reach the admin API');
  });

  it('refuses an unreadable document with 2 before calling the API', async () => {
    const env = { VANTAGEEDGE_URL: 'http://127.0.0.1:1', VANTAGEEDGE_TOKEN: 't' };
    const missing = await run(['diff', '-f', '/nonexistent/tenant.yaml', '-t', 'acme'], env);
    expect(missing.code).toBe(EXIT.usage);
    expect(missing.err).toContain('cannot read');
  });
});

describe('secrets', () => {
  // Regression: a token with a line break inside (a wrapped paste, a CI secret saved over two lines)
  // made fetch refuse the header, and the CLI printed fetch's message, which quotes the whole token.
  it('never prints a token it cannot send, from $VANTAGEEDGE_TOKEN or login --token-stdin', async () => {
    const token = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyXzEifQ\n.c2VjcmV0LXNpZ25hdHVyZQ';
    const config = path.join(await tempFolder(), 'config.json');
    const fromEnv = await run(['get', 'tenants'], {
      VANTAGEEDGE_CONFIG: config,
      VANTAGEEDGE_URL: 'http://127.0.0.1:1',
      VANTAGEEDGE_TOKEN: token,
    });
    const err: string[] = [];
    const fromLogin = await runCli(['login', '--url', 'http://127.0.0.1:1', '--token-stdin'], {
      env: { VANTAGEEDGE_CONFIG: config },
      stdout: () => {},
      stderr: (text) => err.push(text),
      stdin: async () => `${token}\n`,
    });
    for (const [outcome, text] of [
      [fromEnv.code, fromEnv.err],
      [fromLogin, err.join('\n')],
    ] as const) {
      expect(text).not.toContain('c2VjcmV0LXNpZ25hdHVyZQ');
      expect(text).toContain('not a bearer token');
      expect(outcome).toBe(EXIT.usage);
    }
  });
});

describe('a token on the command line', () => {
  it('is taken, with a warning that other users of the machine can read it, naming the alternatives', async () => {
    const config = path.join(await tempFolder(), 'config.json');
    const token = 'planted.argv.token';
    const onArgv = await run(['login', '--url', 'http://127.0.0.1:1', '--token', token], {
      VANTAGEEDGE_CONFIG: config,
    });
    expect(onArgv.code).toBe(EXIT.unavailable);
    expect(onArgv.err).toContain('--token is visible to every user of this machine');
    expect(onArgv.err).toContain('--token-stdin or $VANTAGEEDGE_TOKEN');
    expect(onArgv.err).not.toContain(token);
    const fromEnv = await run(['login', '--url', 'http://127.0.0.1:1'], {
      VANTAGEEDGE_CONFIG: config,
      VANTAGEEDGE_TOKEN: token,
    });
    expect(fromEnv.code).toBe(EXIT.unavailable);
    expect(fromEnv.err).not.toContain('--token is visible');
  });
});

describe('an admin API URL with a user name or password', () => {
  // Regression: fetch refuses such a URL with an error quoting it, and the CLI printed that error.
  it('is refused without printing the password, from $VANTAGEEDGE_URL or login --url', async () => {
    const config = path.join(await tempFolder(), 'config.json');
    const fromEnv = await run(['get', 'tenants'], {
      VANTAGEEDGE_CONFIG: config,
      VANTAGEEDGE_URL: 'https://ops:url-password-0123@admin.example.com',
      VANTAGEEDGE_TOKEN: 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyXzEifQ.c2lnbmF0dXJl',
    });
    const fromLogin = await run(
      ['login', '--url', 'https://ops:url-password-0123@admin.example.com', '--token', 'abc.def.ghi'],
      { VANTAGEEDGE_CONFIG: config },
    );
    const unparsable = await run(
      ['login', '--url', 'https://ops:url-password-0123@admin.example.com:99999', '--token', 'abc.def.ghi'],
      { VANTAGEEDGE_CONFIG: config },
    );
    const unparsableFromEnv = await run(['get', 'tenants'], {
      VANTAGEEDGE_CONFIG: config,
      VANTAGEEDGE_URL: 'https://ops:url-password-0123@admin.example.com:99999',
      VANTAGEEDGE_TOKEN: 'abc.def.ghi',
    });
    expect(unparsableFromEnv.err).toContain('is not a URL');
    for (const outcome of [fromEnv, fromLogin, unparsable, unparsableFromEnv]) {
      expect(outcome.code).toBe(EXIT.usage);
      expect(`${outcome.out}${outcome.err}`).not.toContain('url-password-0123');
    }
    expect(fromEnv.err).toContain('holds a user name or password');
  });
});

describe('output', () => {
  it('lines up columns and shows empty cells as -', () => {
    expect(
      table(
        [
          { id: 'a', methods: ['GET', 'POST'], limit: null },
          { id: 'bbbb', methods: [], limit: 5 },
        ],
        [
          { header: 'ID', value: (row) => row.id },
          { header: 'METHODS', value: (row) => row.methods },
          { header: 'LIMIT', value: (row) => row.limit },
        ],
      ),
    ).toBe(['ID    METHODS   LIMIT', 'a     GET,POST  -', 'bbbb  -         5'].join('\n'));
  });

  it('shows a plan one resource per line with its changed fields', () => {
    const changes = [
      {
        resource: 'route',
        id: 'r1',
        name: 'GET /users/*',
        change: 'changed' as const,
        fields: [{ field: 'rate_limit.requests_per_second', from: 5, to: 50 }],
      },
      { resource: 'origin', id: null, name: 'posts-api', change: 'added' as const, fields: [] },
      { resource: 'route', id: 'r2', name: 'ANY /old/*', change: 'restored' as const, fields: [] },
    ];
    expect(formatChanges(changes)).toBe(
      [
        '  ~ route GET /users/*  [r1]',
        '      rate_limit.requests_per_second: 5 → 50',
        '  + origin posts-api',
        '  + route ANY /old/* (re-created under its old id)  [r2]',
      ].join('\n'),
    );
    expect(summary(changes)).toBe('3 changes: 1 to add, 1 to restore, 1 to change.');
    expect(summary([])).toBe('No changes.');
  });

  it('derives one idempotency key per tenant, base version and document', () => {
    const key = applyKey('t1', '42', { a: 1 });
    expect(key).toMatch(/^vantageedge-apply-[0-9a-f]{64}$/);
    expect(applyKey('t1', '42', { a: 1 })).toBe(key);
    expect(applyKey('t1', '43', { a: 1 })).not.toBe(key);
    expect(applyKey('t1', '42', { a: 2 })).not.toBe(key);
  });
});
