import { readFileSync } from 'node:fs';
import { parseEnv } from 'node:util';

/**
 * Imported first by every entry point, before any module reads a setting: the `.env` file in the
 * working directory, if there is one, fills in the variables the environment does not set (the
 * environment wins). Node's own parser (that of process.loadEnvFile): the dotenv syntax of `.env.example`.
 * A byte order mark (editors that save "UTF-8 with BOM") is dropped, as dotenv did: node would read it
 * as part of the first setting's name. A `.env` that cannot be read stops start-up with one line.
 */
const ENV_FILE = '.env';
const BYTE_ORDER_MARK = '\ufeff';

function envFileContent(): string | undefined {
  try {
    const content = readFileSync(ENV_FILE, 'utf8');
    return content.startsWith(BYTE_ORDER_MARK) ? content.slice(BYTE_ORDER_MARK.length) : content;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    process.stderr.write(`invalid configuration: ${ENV_FILE} cannot be read: ${(error as Error).message}\n`);
    process.exit(1);
  }
}

const content = envFileContent();
if (content !== undefined) {
  for (const [name, value] of Object.entries(parseEnv(content))) {
    if (process.env[name] === undefined && value !== undefined) process.env[name] = value;
  }
}
