import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * nginx configurations for the benchmark: the origin (fixed ~300-byte JSON and a 64 KiB body), the
 * reference reverse proxy (1 worker, upstream keep-alive — the same shape as the gateway's pools) and
 * the same proxy with proxy_cache for the cache scenarios.
 */

export const ORIGIN_BODY = JSON.stringify({
  id: 1,
  userId: 1,
  title: 'sunt aut facere repellat provident occaecati excepturi optio reprehenderit',
  body: 'quia et suscipit suscipit recusandae consequuntur expedita et cum reprehenderit molestiae ut ut quas totam nostrum rerum est autem sunt rem eveniet architecto',
  tags: ['benchmark', 'vantageedge', 'nginx'],
  ok: true,
});

const COMMON = (prefix: string) => `
daemon off;
master_process on;
user root;
error_log ${prefix}/error.log warn;
pid ${prefix}/nginx.pid;
events { worker_connections 4096; multi_accept on; }
`;

const HTTP_COMMON = (prefix: string) => `
  access_log off;
  client_body_temp_path ${prefix}/client_body;
  proxy_temp_path ${prefix}/proxy_temp;
  fastcgi_temp_path ${prefix}/fastcgi_temp;
  uwsgi_temp_path ${prefix}/uwsgi_temp;
  scgi_temp_path ${prefix}/scgi_temp;
  keepalive_requests 1000000;
  keepalive_timeout 75s;
`;

/** Writes the 64 KiB body file too, so call it after the prefix folder exists. */
export function originConfig(prefix: string, port: number): string {
  mkdirSync(prefix, { recursive: true });
  writeFileSync(path.join(prefix, 'large.json'), JSON.stringify({ data: 'x'.repeat(64 * 1024) }));
  return `${COMMON(prefix)}
worker_processes 1;
http {
${HTTP_COMMON(prefix)}
  server {
    listen 127.0.0.1:${port} reuseport backlog=4096;
    default_type application/json;
    location = /large { alias ${prefix}/large.json; }
    location / { return 200 '${ORIGIN_BODY}'; }
  }
}
`;
}

export function proxyConfig(
  prefix: string,
  port: number,
  originPort: number,
  { cache }: { cache: boolean },
): string {
  const cacheZone = cache
    ? `  proxy_cache_path ${prefix}/cache levels=1:2 keys_zone=bench:10m max_size=100m inactive=10m;\n`
    : '';
  const cacheDirectives = cache
    ? `      proxy_cache bench;\n      proxy_cache_valid 200 10m;\n      proxy_ignore_headers Cache-Control Expires;\n      add_header X-Cache $upstream_cache_status;\n`
    : '';
  return `${COMMON(prefix)}
worker_processes 1;
http {
${HTTP_COMMON(prefix)}
${cacheZone}
  upstream origin {
    server 127.0.0.1:${originPort};
    keepalive 64;
  }
  server {
    listen 127.0.0.1:${port} reuseport backlog=4096;
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
${cacheDirectives}    }
  }
}
`;
}

export function writeNginxConfig(dir: string, contents: string): string {
  mkdirSync(dir, { recursive: true });
  for (const sub of ['client_body', 'proxy_temp', 'fastcgi_temp', 'uwsgi_temp', 'scgi_temp', 'cache']) {
    mkdirSync(path.join(dir, sub), { recursive: true });
  }
  const file = path.join(dir, 'nginx.conf');
  writeFileSync(file, contents);
  return file;
}
