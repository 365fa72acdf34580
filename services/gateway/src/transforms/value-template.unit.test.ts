// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${…} is the route policies' own value-template syntax
import { describe, expect, it } from 'vitest';
import type { GatewayExchange } from '../pipeline/exchange.js';
import { compileValueTemplate, templateValue } from './value-template.js';

const exchange = {
  clientIp: '203.0.113.9',
  requestId: 'req-1',
  tenant: { id: 'tenant-1' },
  route: { config: { id: 'route-1' } },
  identity: { userId: 'user\r\n-1' },
} as unknown as GatewayExchange;

const value = (text: string) => templateValue(compileValueTemplate(text), exchange);

describe('value templates', () => {
  it('resolves each variable, between literals too', () => {
    expect(value('${client_ip}')).toBe('203.0.113.9');
    expect(value('id=${request_id};t=${tenant_id};r=${route_id}.')).toBe('id=req-1;t=tenant-1;r=route-1.');
    expect(value('${consumer_id}')).toBe('user-1');
    expect(value('plain')).toBe('plain');
    expect(value('')).toBe('');
  });

  it('sends a value that does not parse as written (a stored route)', () => {
    expect(value('${unknown} and ${client_ip}')).toBe('${unknown} and ${client_ip}');
    expect(value('unclosed ${client_ip')).toBe('unclosed ${client_ip');
  });

  // A tenant at the snapshot bound carries ≈ 70,000 values, compiled on every replica: a closure per
  // value was ≈ 100 bytes of heap each.
  it('compiles a value without variables to its text, and one variable to a function shared by every route', () => {
    expect(compileValueTemplate('plain')).toBe('plain');
    expect(compileValueTemplate('${unknown}')).toBe('${unknown}');
    expect(compileValueTemplate('${client_ip}')).toBe(compileValueTemplate('${client_ip}'));
    expect(compileValueTemplate('a-${client_ip}')).toBe(compileValueTemplate('a-${client_ip}'));
  });
});
