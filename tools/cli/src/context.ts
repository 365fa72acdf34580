import { plainHttpAllowed } from './admin-api-url.js';
import { ApiClient, type ApiClientOptions } from './api-client.js';
import { CliError, EXIT } from './exit-codes.js';
import type { OutputFormat } from './output.js';
import { configPath, readProfiles } from './profiles.js';

/** What every command gets: where to print, in which format, and the admin API of the chosen profile. */
export interface CliContext {
  output: OutputFormat;
  profile: string;
  configFile: string;
  env: NodeJS.ProcessEnv;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  stdin: () => Promise<string>;
  /** The admin API: $VANTAGEEDGE_URL/$VANTAGEEDGE_TOKEN when set, else the profile `login` saved. */
  client: () => Promise<ApiClient>;
  /** An admin API client for this URL and token, waiting and retrying as every command's does. */
  connect: (url: string, token: string) => ApiClient;
}

export interface ContextOptions {
  output: OutputFormat;
  profile: string;
  env: NodeJS.ProcessEnv;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  stdin: () => Promise<string>;
  /** Waits before a retry (tests: a fake that records the waits). */
  sleep?: ((ms: number) => Promise<void>) | undefined;
  /** The clock a Retry-After date is read against. */
  now?: (() => number) | undefined;
  /** Seconds one request may take, headers and body (`--timeout`, $VANTAGEEDGE_TIMEOUT). */
  timeoutSeconds: number;
  /** The most read of one answer (tests: less than the default). */
  maxAnswerBytes?: number | undefined;
}

export function createContext(options: ContextOptions): CliContext {
  const configFile = configPath(options.env);
  let client: ApiClient | undefined;
  const retry: ApiClientOptions = {
    notice: options.stderr,
    timeoutSeconds: options.timeoutSeconds,
    ...(options.maxAnswerBytes ? { maxAnswerBytes: options.maxAnswerBytes } : {}),
    ...(options.sleep ? { sleep: options.sleep } : {}),
    ...(options.now ? { now: options.now } : {}),
    allowPlainHttp: plainHttpAllowed(options.env),
  };
  const connect = (url: string, token: string) => new ApiClient(url, token, retry);
  return {
    ...options,
    configFile,
    connect,
    async client() {
      if (client) return client;
      const saved = (await readProfiles(configFile)).profiles[options.profile];
      const url = options.env['VANTAGEEDGE_URL'] || saved?.url;
      const token = options.env['VANTAGEEDGE_TOKEN'] || saved?.token;
      if (!url || !token) {
        throw new CliError(
          EXIT.auth,
          `not logged in (profile ${options.profile}): run vantageedge login --url <admin API URL> --token-stdin`,
        );
      }
      client = connect(url, token);
      return client;
    },
  };
}
