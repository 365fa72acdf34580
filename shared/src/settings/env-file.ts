import { existsSync } from 'node:fs';
import { loadEnvFile } from 'node:process';

/**
 * Imported first by every entry point, before any module reads a setting: the `.env` file in the
 * working directory, if there is one, fills in the variables the environment does not set (the
 * environment wins). Node's own parser: the dotenv syntax of `.env.example`.
 */
const ENV_FILE = '.env';

if (existsSync(ENV_FILE)) loadEnvFile(ENV_FILE);
