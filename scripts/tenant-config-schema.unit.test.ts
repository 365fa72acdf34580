import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { configDocument } from '@vantageedge/control-plane/schemas/config-document';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { SCHEMA_FILE, schemaText } from './tenant-config-schema.js';

const GITOPS = path.dirname(SCHEMA_FILE);

describe('the tenant document schema and the GitOps example', () => {
  it('commits the JSON Schema generated from the zod schema (make tenant-config-schema)', async () => {
    expect(JSON.parse(await readFile(SCHEMA_FILE, 'utf8'))).toEqual(JSON.parse(schemaText()));
  });

  it('has example tenant files the admin API accepts, pointing editors at the schema', async () => {
    const files = (await readdir(path.join(GITOPS, 'tenants'))).filter((file) => file.endsWith('.yaml'));
    expect(files.length).toBeGreaterThan(0);
    for (const file of files) {
      const text = await readFile(path.join(GITOPS, 'tenants', file), 'utf8');
      expect(text.split('\n')[0]).toBe('# yaml-language-server: $schema=../tenant-config.schema.json');
      const result = configDocument.safeParse(parse(text));
      expect(result.success, `${file}: ${JSON.stringify(result.error?.issues)}`).toBe(true);
    }
  });
});
