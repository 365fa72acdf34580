import { ReplyError } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { createStoreCircuit, storeFailureReason, UncountedStoreFailure } from './store-circuit.js';

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

  it('a failure its caller says is no sign of the store being down fails alone, without opening the circuit', async () => {
    const events: string[] = [];
    const circuit = createStoreCircuit({ failures: 2, onOpen: () => events.push('open') });
    for (let i = 0; i < 4; i++) {
      const error = await circuit
        .run(() => Promise.reject(new UncountedStoreFailure(new Error('Command timed out'))))
        .catch((e: unknown) => e);
      expect(storeFailureReason(error)).toBe('uncounted');
    }
    expect(events).toEqual([]);
    expect(circuit.degraded).toBe(false);
  });

  it('a command the store refuses (a reply error about that command) does not count against the circuit', async () => {
    const events: string[] = [];
    const circuit = createStoreCircuit({ failures: 2, onOpen: () => events.push('open') });
    const refusals = [
      'ERR value is not an integer or out of range script: 6f1b…, on @user_script:85.',
      'ERR user_script:1: attempt to compare nil with number script: 6f1b…, on @user_script:1.',
      'WRONGTYPE Operation against a key holding the wrong kind of value',
    ];
    for (let i = 0; i < 6; i++) {
      const error = await circuit
        .run(() => Promise.reject(new ReplyError(refusals[i % refusals.length])))
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ReplyError);
      expect(storeFailureReason(error)).toBe('refused');
    }
    expect(events).toEqual([]);
    expect(circuit.degraded).toBe(false);
    // A refusal neither opens the circuit nor hides real failures around it.
    await expect(circuit.run(fail)).rejects.toThrow('redis down');
    await expect(circuit.run(() => Promise.reject(new ReplyError('ERR bad')))).rejects.toThrow('ERR bad');
    await expect(circuit.run(fail)).rejects.toThrow('redis down');
    expect(events).toEqual(['open']);
  });

  it.each([
    'BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.',
    'LOADING Redis is loading the dataset in memory',
    "OOM command not allowed when used memory > 'maxmemory'.",
    'CLUSTERDOWN The cluster is down',
    "READONLY You can't write against a read only replica.",
    'MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to no.',
  ])('a reply that says the store itself is unavailable counts: %s', async (message) => {
    const circuit = createStoreCircuit({ failures: 2 });
    for (let i = 0; i < 2; i++) {
      const error = await circuit.run(() => Promise.reject(new ReplyError(message))).catch((e: unknown) => e);
      expect(storeFailureReason(error)).toBe('error');
    }
    expect(circuit.skipping).toBe(true);
  });
});
