import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A small local stand-in for the demo's origin (jsonplaceholder.typicode.com), which needs the
 * internet. Same shapes: /posts, /posts/:id, /users, /users/:id, plus /public/status, /public/posts,
 * /admin/users and /health for the demo routes (the gateway strips the /api prefix).
 */

interface Post {
  userId: number;
  id: number;
  title: string;
  body: string;
}
interface User {
  id: number;
  name: string;
  username: string;
  email: string;
}

const USERS: User[] = Array.from({ length: 10 }, (_, i) => ({
  id: i + 1,
  name: `Demo User ${i + 1}`,
  username: `user${i + 1}`,
  email: `user${i + 1}@example.test`,
}));

const POSTS: Post[] = Array.from({ length: 100 }, (_, i) => ({
  userId: (i % 10) + 1,
  id: i + 1,
  title: `post ${i + 1}`,
  body: `This is the body of demo post ${i + 1}, served by the local demo origin.`,
}));

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const payload = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(payload),
  });
  res.end(payload);
}

function byId<T extends { id: number }>(items: readonly T[], idText: string | undefined): T | undefined {
  const id = Number(idText);
  return Number.isInteger(id) ? items.find((item) => item.id === id) : undefined;
}

/** What the demo origin answers for a path: [status, JSON body]. */
export function demoResponse(pathname: string): [number, unknown] {
  const [first, second, third] = pathname.split('/').filter(Boolean);
  if (pathname === '/health') return [200, { status: 'ok' }];
  if (first === 'public' && second === 'status') {
    return [200, { status: 'ok', service: 'demo-origin', time: new Date().toISOString() }];
  }
  if (first === 'public' && second === 'posts' && third === undefined) return [200, POSTS.slice(0, 10)];
  if (first === 'admin' && second === 'users') return [200, { users: USERS, admin: true }];
  const collection = first === 'posts' ? POSTS : first === 'users' ? USERS : undefined;
  if (!collection) return [404, {}];
  if (second === undefined) return [200, collection];
  const item = byId<Post | User>(collection, second);
  return item && third === undefined ? [200, item] : [404, {}];
}

export function handleDemoRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
  const [status, body] = demoResponse(new URL(req.url ?? '/', 'http://origin').pathname);
  sendJson(res, status, body);
}

export async function startDemoOrigin(
  port = 0,
  host = '127.0.0.1',
): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    // Drain any request body; the demo origin ignores it.
    req.resume();
    req.on('end', () => handleDemoRequest(req, res));
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve) => server.listen(port, host, resolve));
  const { port: boundPort } = server.address() as AddressInfo;
  return {
    url: `http://${host}:${boundPort}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
