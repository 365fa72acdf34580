import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A small local stand-in for the seed's demo origin (jsonplaceholder.typicode.com), which needs the
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

export function handleDemoRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://origin');
  const segments = url.pathname.split('/').filter(Boolean);
  const [first, second, third] = segments;
  if (url.pathname === '/health') return sendJson(res, 200, { status: 'ok' });
  if (first === 'public' && second === 'status') {
    return sendJson(res, 200, { status: 'ok', service: 'demo-origin', time: new Date().toISOString() });
  }
  if (first === 'public' && second === 'posts' && third === undefined)
    return sendJson(res, 200, POSTS.slice(0, 10));
  if (first === 'admin' && second === 'users') return sendJson(res, 200, { users: USERS, admin: true });
  if (first === 'posts') {
    if (second === undefined) return sendJson(res, 200, POSTS);
    const post = byId(POSTS, second);
    return post && third === undefined ? sendJson(res, 200, post) : sendJson(res, 404, {});
  }
  if (first === 'users') {
    if (second === undefined) return sendJson(res, 200, USERS);
    const user = byId(USERS, second);
    return user && third === undefined ? sendJson(res, 200, user) : sendJson(res, 404, {});
  }
  sendJson(res, 404, {});
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
