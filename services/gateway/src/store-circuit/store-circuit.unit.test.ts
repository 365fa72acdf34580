import { describe, expect, it } from 'vitest';
import { createStoreCircuit, storeFailureReason } from './store-circuit.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const fail = () => Promise.reject(new Error('redis down'));

describe('store circuit', () => {
  it('opens after consecutive failures, skips the store until a trial is due, closes on a good trial', async () => {
    const events: string[] = [];
    const circuit = createStoreCircuit({
      failures: 2,
      halfOpenAfterMs: 100,
      onOpen: () => events.push('open'),
      onClose: () => events.push('close'),
    });
    let calls = 0;
    const call = async () => {
      calls++;
      throw new Error('redis down');
    };
    for (let i = 0; i < 2; i++) await expect(circuit.run(call)).rejects.toThrow('redis down');
    expect(events).toEqual(['open']);
    expect(circuit.skipping).toBe(true);
    expect(circuit.degraded).toBe(true);
    // Open: refused without calling the store, and classified as such.
    const refused = await circuit.run(call).catch((error: unknown) => error);
    expect(storeFailureReason(refused)).toBe('circuit_open');
    expect(storeFailureReason(new Error('timeout'))).toBe('error');
    expect(calls).toBe(2);

    await sleep(150);
    expect(circuit.skipping).toBe(false);
    await expect(circuit.run(async () => 'ok')).resolves.toBe('ok');
    expect(events).toEqual(['open', 'close']);
    expect(circuit.degraded).toBe(false);
  });

  it('a failed trial opens the circuit again for another period', async () => {
    const circuit = createStoreCircuit({ failures: 1, halfOpenAfterMs: 50 });
    await expect(circuit.run(fail)).rejects.toThrow();
    await sleep(80);
    expect(circuit.skipping).toBe(false);
    await expect(circuit.run(fail)).rejects.toThrow('redis down');
    expect(circuit.skipping).toBe(true);
  });
});
