import { existsSync } from 'node:fs';
import path from 'node:path';
import { AddressRanges } from '@vantageedge/shared/net/address-ranges';
import { hostHeaderName } from '@vantageedge/shared/routing/host-lookup';
import express, { type ErrorRequestHandler } from 'express';
import { type ConsoleSettings, consoleContentSecurityPolicy, consoleSettings } from './console-settings.js';
import { ApiError } from './errors.js';
import { exactRouter } from './exact-routing.js';

/** Issues a development session token (make dev only); see services/dev. */
export type DevSignIn = () => Promise<{ token: string; userId: string }>;

export interface ConsoleRouterDeps {
  /** The built console (make console-build / make build): index.html and assets/. */
  directory: string;
  clerkPublishableKey: string | undefined;
  /** Present only when the control plane runs in dev mode with a development token issuer. */
  devSignIn?: DevSignIn | undefined;
}

/** A `.map` file, in any case (the folder may be on a case-insensitive file system), with or without a trailing slash. */
const SOURCE_MAP = /\.map\/?$/i;

/**
 * The path as the static files resolve it: decoded (`%2E` is a dot, `%2F` a slash there) and without
 * its `.` segments (`x.map/.` is `x.map` there); a malformed one is theirs to refuse.
 */
function resolvedPath(raw: string): string {
  return path.posix.normalize(decodedPath(raw));
}

function decodedPath(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

const LOOPBACK = AddressRanges.parse(['127.0.0.0/8', '::1/128']);

/** A connection from this machine: 127.0.0.0/8 (IPv4-mapped too) or ::1. */
export function isLoopbackPeer(address: string | undefined): boolean {
  return address !== undefined && LOOPBACK.has(address);
}

/**
 * A request from this machine (the connection's peer address is loopback: Host and Origin are only
 * what the client says, and a control plane bound to 0.0.0.0 hears the whole network), for this
 * machine (Host `localhost`, `*.localhost` or a loopback address), from no page or a page of that same
 * origin. Otherwise a web page the developer visits could read the development admin token: through
 * DNS rebinding (its own name resolving to 127.0.0.1, so Host is that name), or with a cross-site POST.
 */
function fromThisMachine(
  peer: string | undefined,
  host: string | undefined,
  origin: string | undefined,
): boolean {
  if (!isLoopbackPeer(peer)) return false;
  const name = host === undefined ? undefined : hostHeaderName(host);
  const local =
    name === 'localhost' || name?.endsWith('.localhost') === true || name === '127.0.0.1' || name === '[::1]';
  if (!local) return false;
  if (origin === undefined) return true;
  try {
    return new URL(origin).host === host?.toLowerCase();
  } catch {
    return false;
  }
}

/**
 * What `send` refuses of a console file's request once it found the file, in the API's error shape: a
 * stale If-Match or If-Unmodified-Since (412) and a Range past the file's end (416). Its errors carry
 * only a status, which the API's error handler would otherwise answer as a 500 (and log as unexpected).
 */
const fileRefusals: ErrorRequestHandler = (err, req, _res, next) => {
  const status = (err as { status?: unknown } | null)?.status;
  if (status === 412) {
    const field = req.headers['if-match'] !== undefined ? 'if-match' : 'if-unmodified-since';
    next(
      new ApiError(412, 'precondition_failed', 'the file does not meet the request’s precondition', [
        { field, issue: 'the file is not the one it names (it changed)' },
      ]),
    );
    return;
  }
  if (status === 416) {
    const headers = (err as { headers?: Record<string, string> }).headers ?? {};
    next(
      new ApiError(
        416,
        'range_not_satisfiable',
        'the range is not within the file',
        [{ field: 'range', issue: 'starts past the end of the file' }],
        headers['Content-Range'] === undefined ? {} : { 'Content-Range': headers['Content-Range'] },
      ),
    );
    return;
  }
  next(err);
};

/**
 * The web console at /console: the static app from `directory` (no CDN), /console/config.json (the
 * sign-ins it may offer) and, in dev mode only, POST /console/dev-session. The console calls the admin
 * API on this same origin with the signed-in user's Clerk session token.
 */
export function createConsoleRouter(deps: ConsoleRouterDeps): express.Router {
  const router = exactRouter();
  const directory = path.resolve(deps.directory);
  const settings: ConsoleSettings = consoleSettings({
    clerkPublishableKey: deps.clerkPublishableKey,
    devSignIn: deps.devSignIn !== undefined,
  });
  const csp = consoleContentSecurityPolicy(settings);

  router.use('/console', (_req, res, next) => {
    res.setHeader('Content-Security-Policy', csp);
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Referrer-Policy', 'no-referrer');
    // A page on another site that opened the console (window.open) keeps no handle on its window: it
    // could otherwise send the signed-in admin's tab to a look-alike page later.
    res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
    next();
  });
  // The app's page, at /console and /console/ (its asset URLs are absolute: /console/assets/…).
  const page: express.RequestHandler = (_req, res, next) => {
    const index = path.join(directory, 'index.html');
    if (!existsSync(index)) {
      next(
        new ApiError(
          503,
          'console_not_built',
          `the console is not built in ${directory}: run make console-build (or make build), or set CONSOLE_DIR`,
        ),
      );
      return;
    }
    res.setHeader('Cache-Control', 'no-cache');
    res.sendFile(index);
  };
  router.get('/console', page);
  router.get('/console/', page);
  router.get('/console/config.json', (_req, res) => {
    res.setHeader('Cache-Control', 'no-store');
    res.json(settings);
  });
  router.post('/console/dev-session', async (req, res) => {
    if (!deps.devSignIn)
      throw new ApiError(404, 'not_found', 'the development sign-in exists only under make dev');
    if (!fromThisMachine(req.socket.remoteAddress, req.headers.host, req.headers.origin))
      throw new ApiError(
        403,
        'forbidden',
        'the development sign-in answers only this machine’s own pages (a connection from a loopback address, Host localhost or a loopback address)',
      );
    const issued = await deps.devSignIn();
    res.setHeader('Cache-Control', 'no-store');
    res.json({ token: issued.token, user_id: issued.userId });
  });
  // Source maps are the console's whole source: built beside CONSOLE_DIR, never in it, and refused
  // here too in case a folder still holds some (a build from before they were moved out).
  router.use('/console', (req, _res, next) => {
    if (SOURCE_MAP.test(resolvedPath(req.path))) {
      next(new ApiError(404, 'not_found', 'source maps of the console are not served'));
      return;
    }
    next();
  });
  router.use(
    '/console',
    express.static(directory, {
      index: 'index.html',
      redirect: false,
      setHeaders: (res, file) => {
        const immutable = file.startsWith(path.join(directory, 'assets') + path.sep);
        res.setHeader('Cache-Control', immutable ? 'public, max-age=31536000, immutable' : 'no-cache');
      },
    }),
  );
  router.use('/console', fileRefusals);
  return router;
}
