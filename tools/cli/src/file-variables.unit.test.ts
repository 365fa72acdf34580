// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${…} and ${{ … }} are the syntaxes under test
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { readDocument } from './document-file.js';
import { CliError, EXIT } from './exit-codes.js';
import { escapedForFile, maskFileVariables } from './file-variables.js';

let folder = '';
beforeAll(async () => {
  folder = await mkdtemp(path.join(os.tmpdir(), 'vantageedge-file-variables-'));
});
afterAll(async () => {
  if (folder) await rm(folder, { recursive: true, force: true });
});

/** The file `name` (in a folder of the test's own) holding `text`, read with `env`. */
async function read(text: string, env: NodeJS.ProcessEnv, name = 'acme.yaml') {
  const file = path.join(folder, name);
  await writeFile(file, text);
  return readDocument(file, async () => '', env);
}

async function refusal(text: string, env: NodeJS.ProcessEnv = {}): Promise<string> {
  const error = await read(text, env).then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  expect(error).toBeInstanceOf(CliError);
  expect((error as CliError).exitCode).toBe(EXIT.usage);
  return (error as CliError).message.replace(`${folder}${path.sep}`, '');
}

const ROUTE = (value: string) =>
  `routes:\n  - path_pattern: /a/*\n    request_headers:\n      set:\n        authorization: ${value}\n`;

describe('${{ env "VANTAGEEDGE_VAR_…" }} in a tenant document', () => {
  it('is replaced by the variable’s value, alone or inside a longer string, in YAML and in JSON', async () => {
    const env = { VANTAGEEDGE_VAR_TOKEN: 's3cr3t-token', VANTAGEEDGE_VAR_REGION: 'eu' };
    const yaml = await read(ROUTE(`'Bearer \${{ env "VANTAGEEDGE_VAR_TOKEN" }}'`), env);
    expect(yaml.document).toEqual({
      routes: [{ path_pattern: '/a/*', request_headers: { set: { authorization: 'Bearer s3cr3t-token' } } }],
    });
    const json = await read(
      '{"origins":[{"name":"x","url":"https://${{env \\"VANTAGEEDGE_VAR_REGION\\"}}.example/${{ env \\"VANTAGEEDGE_VAR_REGION\\" }}"}]}',
      env,
      'acme.json',
    );
    expect(json.document).toEqual({ origins: [{ name: 'x', url: 'https://eu.example/eu' }] });
    expect(yaml.variables).toEqual([{ name: 'VANTAGEEDGE_VAR_TOKEN', value: 's3cr3t-token' }]);
  });

  it('inserts the value as a string: quotes, line breaks and ": " in it do not change the document', async () => {
    const value = 'x"\n  evil: true\n: y\n- z\nroutes: []\n# not a comment';
    const file =
      'routes:\n  - path_pattern: /a/*\n    fixed_response: { status: 200, body: "${{ env \\"VANTAGEEDGE_VAR_BODY\\" }}" }\n  - path_pattern: /b/*\n';
    const { document } = await read(file, { VANTAGEEDGE_VAR_BODY: value });
    expect(document).toEqual({
      routes: [
        { path_pattern: '/a/*', fixed_response: { status: 200, body: value } },
        { path_pattern: '/b/*' },
      ],
    });
  });

  it('leaves the route policies’ own ${…} templates and values without references untouched', async () => {
    const text =
      'routes:\n  - path_pattern: /a/*\n    request_headers:\n      set: { x-client: "${client_ip}", x-js: "${{a: 1}}", x-n: 5 }\n';
    const { document, variables } = await read(text, {});
    expect(document).toEqual({
      routes: [
        {
          path_pattern: '/a/*',
          request_headers: { set: { 'x-client': '${client_ip}', 'x-js': '${{a: 1}}', 'x-n': 5 } },
        },
      ],
    });
    expect(variables).toEqual([]);
  });

  it('refuses a variable that is not set, naming the file, the line, the field and the variable', async () => {
    const message = await refusal(ROUTE(`'Bearer \${{ env "VANTAGEEDGE_VAR_TOKEN" }}'`));
    expect(message).toBe(
      'acme.yaml, line 5 (routes.0.request_headers.set.authorization): $VANTAGEEDGE_VAR_TOKEN is not set',
    );
    const empty = await refusal(ROUTE(`'\${{ env "VANTAGEEDGE_VAR_TOKEN" }}'`), {
      VANTAGEEDGE_VAR_TOKEN: '',
    });
    expect(empty).toBe(
      'acme.yaml, line 5 (routes.0.request_headers.set.authorization): $VANTAGEEDGE_VAR_TOKEN is empty',
    );
  });

  it('refuses a variable without the VANTAGEEDGE_VAR_ prefix, and never shows its value', async () => {
    const env = { AWS_SECRET_ACCESS_KEY: 'aws-secret', VANTAGEEDGE_TOKEN: 'admin-token' };
    for (const name of ['AWS_SECRET_ACCESS_KEY', 'VANTAGEEDGE_TOKEN', 'vantageedge_var_token']) {
      const message = await refusal(ROUTE(`'\${{ env "${name}" }}'`), env);
      expect(message).toBe(
        `acme.yaml, line 5 (routes.0.request_headers.set.authorization): $${name} may not be read: a file reads only variables whose names start with VANTAGEEDGE_VAR_`,
      );
    }
  });

  it.each([
    ['an unquoted name', '${{ env VANTAGEEDGE_VAR_TOKEN }}'],
    ['single quotes', "${{ env 'VANTAGEEDGE_VAR_TOKEN' }}"],
    ['no closing braces', '${{ env "VANTAGEEDGE_VAR_TOKEN" }'],
    ['a name that is not one', '${{ env "VANTAGEEDGE_VAR_A B" }}'],
  ])('refuses a reference written wrong: %s', async (_label, reference) => {
    const message = await refusal(ROUTE(JSON.stringify(reference)), { VANTAGEEDGE_VAR_TOKEN: 't' });
    expect(message).toMatch(
      /^acme\.yaml, line 5 \(routes\.0\.request_headers\.set\.authorization\): .* is not a variable reference: write \$\{\{ env "VANTAGEEDGE_VAR_NAME" \}\}$/,
    );
  });

  it('refuses a reference in a key: only values are substituted', async () => {
    const message = await refusal(
      'routes:\n  - path_pattern: /a/*\n    request_headers:\n      set:\n        "${{ env \\"VANTAGEEDGE_VAR_H\\" }}": v\n',
      { VANTAGEEDGE_VAR_H: 'x-h' },
    );
    expect(message).toBe(
      'acme.yaml, line 5 (routes.0.request_headers.set): a key may not read a variable, only a value may',
    );
  });
});

describe('$${{ in a tenant document: the text ${{', () => {
  const env = { VANTAGEEDGE_VAR_TOKEN: 'job-secret' };

  it('is read as ${{, never as a reference, in values and in keys', async () => {
    const text =
      'routes:\n  - path_pattern: /a/*\n    request_headers:\n      set:\n' +
      '        "x-$${{ env \\"VANTAGEEDGE_VAR_TOKEN\\" }}": \'$${{ env "VANTAGEEDGE_VAR_TOKEN" }} and $$${{ env "VANTAGEEDGE_VAR_TOKEN" }}\'\n';
    const { document, variables } = await read(text, env);
    expect(document).toEqual({
      routes: [
        {
          path_pattern: '/a/*',
          request_headers: {
            set: {
              'x-${{ env "VANTAGEEDGE_VAR_TOKEN" }}':
                '${{ env "VANTAGEEDGE_VAR_TOKEN" }} and $${{ env "VANTAGEEDGE_VAR_TOKEN" }}',
            },
          },
        },
      ],
    });
    expect(variables).toEqual([]);
  });

  it('is how a dump writes stored text: read back, it is the text stored, whatever it holds', async () => {
    const stored = [
      '${{ env "VANTAGEEDGE_VAR_TOKEN" }}',
      '$${{ env "VANTAGEEDGE_VAR_TOKEN" }}',
      'a $$$${{env "VANTAGEEDGE_VAR_TOKEN"}}${{ env "VANTAGEEDGE_VAR_TOKEN" }}${{',
      '${{ env VANTAGEEDGE_VAR_TOKEN }}',
      '${{a: 1}} ${client_ip} $ {{ }}',
    ];
    const document = {
      routes: stored.map((body, index) => ({
        path_pattern: `/r${index}`,
        fixed_response: { status: 200, body },
        query: { add: { [body]: body } },
      })),
    };
    for (const [name, text] of [
      ['dump.yaml', stringify(escapedForFile(document))],
      ['dump.json', JSON.stringify(escapedForFile(document))],
    ] as const) {
      const read_ = await read(text, env, name);
      expect(read_.document).toEqual(document);
      expect(read_.variables).toEqual([]);
    }
  });
});

describe('maskFileVariables', () => {
  it('masks a value the admin API wrote back in another case or JSON-escaped', () => {
    const variables = [
      { name: 'VANTAGEEDGE_VAR_HEADER', value: 'ghp_R8xK2mQ7vL9sT4wZ1nB6' },
      { name: 'VANTAGEEDGE_VAR_QUOTED', value: 'pa"ss\\word' },
    ];
    expect(
      maskFileVariables(
        {
          name: 'x-ghp_r8xk2mq7vl9st4wz1nb6',
          message: 'GHP_R8XK2MQ7VL9ST4WZ1NB6.example.com is not a host of this tenant',
          quoted: 'body: "pa\\"ss\\\\word" refused',
        },
        variables,
      ),
    ).toEqual({
      name: 'x-<$VANTAGEEDGE_VAR_HEADER>',
      message: '<$VANTAGEEDGE_VAR_HEADER>.example.com is not a host of this tenant',
      quoted: 'body: "<$VANTAGEEDGE_VAR_QUOTED>" refused',
    });
  });

  it('shows where a value read from a variable stands instead of the value, at any depth', () => {
    const answer = {
      changes: [
        { fields: [{ field: 'request_headers', from: null, to: { set: { a: 'Bearer s3cr3t-token' } } }] },
      ],
      note: 'eu',
    };
    expect(
      maskFileVariables(answer, [
        { name: 'VANTAGEEDGE_VAR_TOKEN', value: 's3cr3t-token' },
        { name: 'VANTAGEEDGE_VAR_REGION', value: 'eu' },
      ]),
    ).toEqual({
      changes: [
        {
          fields: [
            { field: 'request_headers', from: null, to: { set: { a: 'Bearer <$VANTAGEEDGE_VAR_TOKEN>' } } },
          ],
        },
      ],
      note: 'eu',
    });
  });
});
