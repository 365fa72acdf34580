import { describe, expect, it } from 'vitest';
import { createStoreCircuits } from './store-circuits.js';

const fail = () => Promise.reject(new Error('redis down'));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('store circuits, one per node', () => {
  it("opens the failing node's circuit only; the other node's tenants keep calling the store", async () => {
    const nodes: Record<string, string> = { a: '10.0.0.1:6379', b: '10.0.0.2:6379' };
    const events: string[] = [];
    const circuits = createStoreCircuits({
      nodeOf: (tenantId) => nodes[tenantId],
      failures: 2,
      halfOpenAfterMs: 60_000,
      onOpen: (node, open) => events.push(`open ${node} (${open})`),
    });
    for (let i = 0; i < 2; i++) await expect(circuits.of('a').run(fail)).rejects.toThrow('redis down');
    expect(circuits.of('a').skipping).toBe(true);
    expect(circuits.of('b').skipping).toBe(false);
    await expect(circuits.of('b').run(async () => 'ok')).resolves.toBe('ok');
    expect(circuits.degraded).toBe(true);
    expect(events).toEqual(['open 10.0.0.1:6379 (1)']);
  });

  it('tenants on one node share its circuit, and follow their tenant to another node', async () => {
    const nodes: Record<string, string> = { a: 'n1:1', b: 'n1:1' };
    const circuits = createStoreCircuits({ nodeOf: (tenantId) => nodes[tenantId], failures: 1 });
    await expect(circuits.of('a').run(fail)).rejects.toThrow();
    expect(circuits.of('b').skipping).toBe(true);
    // A failover: b's slot is now served by another master, whose circuit is closed.
    nodes['b'] = 'n2:1';
    expect(circuits.of('b').skipping).toBe(false);
  });

  it('shares one circuit between every tenant whose node is not known, and without a locator', async () => {
    const unknown = createStoreCircuits({ nodeOf: () => undefined, failures: 1 });
    await expect(unknown.of('a').run(fail)).rejects.toThrow();
    expect(unknown.of('b').skipping).toBe(true);
    const single = createStoreCircuits({ failures: 1 });
    await expect(single.of('a').run(fail)).rejects.toThrow();
    expect(single.of('b').skipping).toBe(true);
    expect(single.degraded).toBe(true);
  });

  it('reports closing with the number of circuits still open', async () => {
    const events: string[] = [];
    const circuits = createStoreCircuits({
      nodeOf: (tenantId) => tenantId,
      failures: 1,
      halfOpenAfterMs: 30,
      onOpen: (node, open) => events.push(`open ${node} ${open}`),
      onClose: (node, open) => events.push(`close ${node} ${open}`),
    });
    await expect(circuits.of('x').run(fail)).rejects.toThrow();
    await expect(circuits.of('y').run(fail)).rejects.toThrow();
    await sleep(50);
    // A failed trial opens x again: still one node, not two.
    await expect(circuits.of('x').run(fail)).rejects.toThrow();
    await circuits.of('y').run(async () => 'ok');
    expect(events).toEqual(['open x 1', 'open y 2', 'open x 2', 'close y 1']);
    expect(circuits.degraded).toBe(true);
  });
});
