// `make tenant-config-schema`: writes the JSON Schema of the tenant document (generated from the zod
// schema the admin API validates documents with) where the GitOps example's files point editors.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { configDocumentJsonSchema } from '@vantageedge/control-plane/schemas/config-document';

export const SCHEMA_FILE = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
  'examples/gitops/tenant-config.schema.json',
);

export function schemaText(): string {
  return `${JSON.stringify(configDocumentJsonSchema(), null, 2)}\n`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await writeFile(SCHEMA_FILE, schemaText());
  console.log(`wrote ${path.relative(process.cwd(), SCHEMA_FILE)}`);
}
