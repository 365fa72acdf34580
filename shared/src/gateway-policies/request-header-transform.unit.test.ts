// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${…} is the route policies' own value-template syntax
import { describe, expect, it } from 'vitest';
import type { HeaderTransform } from '../domain/route-policies.js';
import { applyRequestHeaderTransform, compileRequestHeaderTransform } from './request-header-transform.js';

/**
 * The one request header transform the gateways apply and explain tells of: what a route's stored
 * `request_headers` leaves of a client's headers (node's, lower-case names).
 */
type Values = { readonly client_ip: string };
const compileValue = (text: string) =>
  text === '${client_ip}' ? (values: Values) => values.client_ip : text;

function transformed(
  transform: Partial<HeaderTransform>,
  headers: Record<string, string | string[]>,
): Record<string, string | string[] | undefined> {
  const compiled = compileRequestHeaderTransform(
    { set: {}, add: {}, remove: [], ...transform },
    compileValue,
  );
  const result: Record<string, string | string[] | undefined> = { ...headers };
  if (compiled !== null) applyRequestHeaderTransform(compiled, result, { client_ip: '192.0.2.7' });
  return result;
}

describe('the request header transform', () => {
  it('removes and sets a header in every spelling CGI-style origins read as its name', () => {
    const many = 'x-a-b-c-d-e'; // more separators than the spellings listed when the route compiles
    expect(
      transformed(
        { remove: ['X-User-Role', many], set: { 'X-Canary': 'yes' } },
        {
          x_user_role: 'admin',
          'x-user_role': 'admin',
          x_canary: 'no',
          'x-canary': 'no',
          x_a_b_c_d_e: '1',
          'x-a_b-c-d-e': '1',
          'x.a.b_c-d-e': '1',
          'x.user.role': 'admin',
          'x.canary': 'no',
          // As long as a removed spelling, and no spelling of it.
          'x-user-rolf': 'kept',
          x_user_rolf: 'kept',
          accept: 'text/html',
        },
      ),
    ).toEqual({ 'x-canary': 'yes', 'x-user-rolf': 'kept', x_user_rolf: 'kept', accept: 'text/html' });
  });

  it('adds after the client’s line, but the route’s is the only line of a header the gateway drops from clients', () => {
    expect(
      transformed(
        { add: { 'X-Tag': 'route', 'X-Api-Key': 'partner-key', 'X-Client-IP': '${client_ip}' } },
        {
          'x-tag': 'client',
          'x-api-key': 'spoofed',
          'x-client-ip': '203.0.113.9',
          x_client_ip: '203.0.113.9',
        },
      ),
    ).toEqual({ 'x-tag': ['client', 'route'], 'x-api-key': 'partner-key', 'x-client-ip': '192.0.2.7' });
  });

  // Regression test: a route adding X_Client_IP appended to the client's own x_client_ip line, and a
  // CGI-style origin, reading both as X-Client-IP, got the client's spoofed address before the route's.
  it('adds to nothing a header the gateway drops from clients that the route spells with `_` or `.`', () => {
    expect(
      transformed(
        { add: { X_Client_IP: '${client_ip}', 'X.Api.Key': 'partner-key' } },
        {
          x_client_ip: '203.0.113.9',
          'x-client-ip': '203.0.113.9',
          'x.client.ip': '203.0.113.9',
          'x.api.key': 'spoofed',
          x_api_key: 'spoofed',
          accept: 'text/html',
        },
      ),
    ).toEqual({ x_client_ip: '192.0.2.7', 'x.api.key': 'partner-key', accept: 'text/html' });
  });

  // Regression test: a stored route removing `CDN_Loop` removed the client's CDN-Loop line as another
  // spelling of it, and with it the platform's entries the next gateway counts to find a loop.
  it('leaves the client’s CDN-Loop to a stored route removing it in another spelling', () => {
    const headers = { 'cdn-loop': 'vantageedge, vantageedge', 'x-debug': '1' };
    expect(transformed({ remove: ['CDN_Loop', 'X-Debug'] }, headers)).toEqual({
      'cdn-loop': headers['cdn-loop'],
    });
    expect(transformed({ remove: ['cdn_loop'] }, headers)).toEqual(headers);
  });

  // Regression test: a stored route removing `x.forwarded.for` removed a trusted proxy's X-Forwarded-For
  // as another spelling of it, before the gateway appended the peer to it: the origin lost the client.
  it('leaves the headers the gateway writes to a stored route removing or writing them in any spelling', () => {
    const headers = {
      'x-forwarded-for': '203.0.113.7',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'shop.example',
      forwarded: 'for=203.0.113.7',
      'x-real-ip': '203.0.113.7',
      'x-request-id': 'proxy-id',
      'x-vantageedge-user-id': 'user_1',
      'x-debug': '1',
    };
    const stored = {
      remove: [
        'x.forwarded.for',
        'X_Forwarded_Proto',
        'X-Forwarded-Host',
        'Forwarded',
        'x.real.ip',
        'X_Request_Id',
        'x_vantageedge_user_id',
        'X-Debug',
      ],
      set: { 'X-Forwarded-For': '10.0.0.1', 'x.forwarded.host': 'evil.example' },
      add: { 'X-Request-Id': 'route-id' },
    };
    const { 'x-debug': _, ...kept } = headers;
    expect(transformed(stored, headers)).toEqual(kept);
    expect(
      compileRequestHeaderTransform({ ...stored, remove: ['x_forwarded_for'] }, compileValue),
    ).toBeNull();
  });

  it('leaves out a stored route’s writes of names routes never write, and its removal of CDN-Loop', () => {
    const stored = {
      set: { Connection: 'close', 'X-HTTP-Method-Override': 'DELETE', 'CDN-Loop': 'none' },
      add: { X_Real_IP: '10.0.0.1' },
      remove: ['cdn-loop'],
    };
    expect(compileRequestHeaderTransform(stored, compileValue)).toBeNull();
    const headers = { connection: 'keep-alive', 'cdn-loop': 'client', 'x-real-ip': '198.51.100.1' };
    expect(transformed({ ...stored, set: { ...stored.set, 'X-Env': 'prod' } }, headers)).toEqual({
      ...headers,
      'x-env': 'prod',
    });
  });
});
