import { describe, expect, it } from 'vitest';
import { hash32 } from '../hash.js';
import type { PickContext } from '../types.js';
import type { BalancerMember } from './balancer.js';
import { createConsistentHashBalancer } from './consistent-hash.js';
import { HashRing } from './hash-ring.js';
import { createLeastConnectionsBalancer } from './least-connections.js';
import { createRoundRobinBalancer } from './round-robin.js';

class FakeMember implements BalancerMember {
  inFlight = 0;
  available = true;
  constructor(
    readonly id: string,
    readonly weight = 1,
  ) {}
  isAvailable(): boolean {
    return this.available;
  }
}

const context = (clientIp = '10.0.0.1'): PickContext => ({ clientIp, path: '/', headers: {} });

function picks(pick: () => number, members: readonly FakeMember[], times: number): string[] {
  return Array.from({ length: times }, () => members[pick()]?.id ?? 'none');
}

describe('smooth weighted round robin', () => {
  it('interleaves by weight like nginx (5,1,1 → a a b a c a a)', () => {
    const members = [new FakeMember('a', 5), new FakeMember('b', 1), new FakeMember('c', 1)];
    const balancer = createRoundRobinBalancer(members);
    expect(picks(() => balancer.pick(context()), members, 7)).toEqual(['a', 'a', 'b', 'a', 'c', 'a', 'a']);
  });

  it('skips unavailable targets and returns -1 when none is left', () => {
    const members = [new FakeMember('a'), new FakeMember('b'), new FakeMember('c')];
    const balancer = createRoundRobinBalancer(members);
    members[1]!.available = false;
    expect(new Set(picks(() => balancer.pick(context()), members, 10))).toEqual(new Set(['a', 'c']));
    for (const member of members) member.available = false;
    expect(balancer.pick(context())).toBe(-1);
  });
});

describe('least connections', () => {
  it('prefers the target with the fewest in-flight leases per weight', () => {
    const members = [new FakeMember('a'), new FakeMember('b', 2), new FakeMember('c')];
    const balancer = createLeastConnectionsBalancer(members);
    members[0]!.inFlight = 3;
    members[1]!.inFlight = 4; // 2 per weight unit
    members[2]!.inFlight = 3;
    expect(members[balancer.pick(context())]!.id).toBe('b');
  });

  it('breaks ties round robin', () => {
    const members = [new FakeMember('a'), new FakeMember('b'), new FakeMember('c')];
    const balancer = createLeastConnectionsBalancer(members);
    expect(picks(() => balancer.pick(context()), members, 6)).toEqual(['a', 'b', 'c', 'a', 'b', 'c']);
  });

  it('ignores unavailable targets even when idle', () => {
    const members = [new FakeMember('a'), new FakeMember('b')];
    const balancer = createLeastConnectionsBalancer(members);
    members[0]!.available = false;
    members[1]!.inFlight = 50;
    expect(picks(() => balancer.pick(context()), members, 3)).toEqual(['b', 'b', 'b']);
  });
});

const keys = Array.from({ length: 10_000 }, (_, i) => `192.168.${i >> 8}.${i & 255}`);

describe('consistent hashing', () => {
  const targets = (count: number) =>
    Array.from({ length: count }, (_, i) => new FakeMember(`http://10.0.0.${i}:80`));
  const assign = (members: FakeMember[]) => {
    const balancer = createConsistentHashBalancer(members, (c) => c.clientIp);
    return keys.map((key) => members[balancer.pick(context(key))]!.id);
  };

  it('sends a key to the same target every time, whatever the target order', () => {
    const members = targets(4);
    const first = assign(members);
    expect(assign(members)).toEqual(first);
    expect(assign([...members].reverse())).toEqual(first);
  });

  it('spreads keys roughly evenly', () => {
    const counts = new Map<string, number>();
    for (const id of assign(targets(4))) counts.set(id, (counts.get(id) ?? 0) + 1);
    for (const count of counts.values()) expect(count / keys.length).toBeGreaterThan(0.18);
    for (const count of counts.values()) expect(count / keys.length).toBeLessThan(0.32);
  });

  it('moves only ~1/N of the keys, all to the new target, when a target is added', () => {
    const members = targets(5);
    const before = assign(members.slice(0, 4));
    const after = assign(members);
    const moved = keys.filter((_, i) => before[i] !== after[i]);
    expect(moved.length / keys.length).toBeGreaterThan(0.12);
    expect(moved.length / keys.length).toBeLessThan(0.28);
    const movedTo = new Set(after.filter((id, i) => id !== before[i]));
    expect(movedTo).toEqual(new Set([members[4]!.id]));
  });

  it('moves only the removed target’s keys when a target in the middle of the list is removed', () => {
    const members = targets(5);
    const before = assign(members);
    const removed = members[1]!.id;
    const after = assign([members[0]!, ...members.slice(2)]);
    expect(after.filter((id, i) => before[i] !== removed && id !== before[i])).toEqual([]);
    expect(after).not.toContain(removed);
  });

  it('moves only the keys of a target that becomes unavailable', () => {
    const members = targets(4);
    const before = assign(members);
    members[2]!.available = false;
    const after = assign(members);
    const lost = members[2]!.id;
    expect(after).not.toContain(lost);
    expect(after.filter((id, i) => before[i] !== lost && id !== before[i])).toEqual([]);
    expect(after.filter((_, i) => before[i] === lost).length).toBeGreaterThan(0);
  });

  /** Counts isAvailable() calls per member (the health and circuit getters behind it are not free). */
  class CountingMember extends FakeMember {
    calls = 0;
    override isAvailable(): boolean {
      this.calls++;
      return super.isAvailable();
    }
  }

  it('refuses a pick on an all-down origin after checking each member once, not every ring point', () => {
    // 100 targets: the ring holds 16,000 points; the walk used to call isAvailable on every one.
    const members = Array.from(
      { length: 100 },
      (_, i) => new CountingMember(`http://10.0.${i >> 8}.${i & 255}:80`),
    );
    for (const member of members) member.available = false;
    const balancer = createConsistentHashBalancer(members, (c) => c.clientIp);
    for (const key of keys.slice(0, 50)) {
      for (const member of members) member.calls = 0;
      expect(balancer.pick(context(key))).toBe(-1);
      expect(members.reduce((sum, member) => sum + member.calls, 0)).toBe(members.length);
      expect(Math.max(...members.map((member) => member.calls))).toBe(1);
    }
  });

  it('checks a down member at most once per pick and still finds the same survivor as a full walk', () => {
    const members = Array.from(
      { length: 40 },
      (_, i) => new CountingMember(`http://10.1.0.${i}:80`, 1 + (i % 3)),
    );
    const balancer = createConsistentHashBalancer(members, (c) => c.clientIp);
    const ring = new HashRing(members);
    // The reference: the plain clockwise walk to the first available owner.
    const fullWalk = (key: string): number => {
      const first = ring.firstPointAtOrAfter(hash32(key));
      for (let step = 0; step < ring.owners.length; step++) {
        const owner = ring.owners[(first + step) % ring.owners.length]!;
        if (members[owner]!.available) return owner;
      }
      return -1;
    };
    for (const survivors of [40, 20, 3, 1, 0]) {
      members.forEach((member, i) => {
        member.available = (i * 7) % 40 < survivors;
      });
      for (const key of keys.slice(0, 500)) {
        for (const member of members) member.calls = 0;
        expect(balancer.pick(context(key))).toBe(fullWalk(key));
        expect(Math.max(...members.map((member) => member.calls))).toBeLessThanOrEqual(1);
      }
    }
  });

  it('gives a heavier target proportionally more keys', () => {
    const members = [new FakeMember('http://a:80', 3), new FakeMember('http://b:80', 1)];
    const share = assign(members).filter((id) => id === 'http://a:80').length / keys.length;
    expect(share).toBeGreaterThan(0.68);
    expect(share).toBeLessThan(0.82);
  });
});

/**
 * A target of weight 0 is drained (Kong's and APISIX's weight 0): it stays in the origin, its pool and
 * health state live on, but no algorithm sends it a new request, a retry included.
 */
describe('drained targets (weight 0)', () => {
  const balancers = {
    round_robin: createRoundRobinBalancer,
    least_connections: createLeastConnectionsBalancer,
    consistent_hash: (members: readonly FakeMember[]) =>
      createConsistentHashBalancer(members, (c: PickContext) => c.clientIp),
  };
  const clients = Array.from({ length: 500 }, (_, i) => `172.16.${i >> 8}.${i & 255}`);

  for (const [algorithm, create] of Object.entries(balancers)) {
    it(`${algorithm}: never picks a weight-0 target, even when it is idle and listed first`, () => {
      const members = [
        new FakeMember('http://drained:80', 0),
        new FakeMember('http://a:80'),
        new FakeMember('http://b:80'),
      ];
      members[1]!.inFlight = 5;
      members[2]!.inFlight = 7;
      const balancer = create(members);
      const picked = new Set(clients.map((ip) => members[balancer.pick(context(ip))]?.id ?? 'none'));
      expect(picked).not.toContain('http://drained:80');
      expect(picked).not.toContain('none');
    });

    it(`${algorithm}: refuses a pick when only weight-0 targets are available`, () => {
      const members = [new FakeMember('http://drained:80', 0), new FakeMember('http://a:80')];
      members[1]!.available = false;
      const balancer = create(members);
      for (const ip of clients.slice(0, 20)) expect(balancer.pick(context(ip))).toBe(-1);
    });
  }

  it('consistent hash: draining a target moves only its keys, and to the others as removing it would', () => {
    const ids = Array.from({ length: 5 }, (_, i) => `http://10.2.0.${i}:80`);
    const assign = (members: FakeMember[]) => {
      const balancer = createConsistentHashBalancer(members, (c) => c.clientIp);
      return keys.map((key) => members[balancer.pick(context(key))]!.id);
    };
    const before = assign(ids.map((id) => new FakeMember(id)));
    const drained = assign(ids.map((id, i) => new FakeMember(id, i === 2 ? 0 : 1)));
    expect(drained).not.toContain(ids[2]);
    expect(drained.filter((id, i) => before[i] !== ids[2] && id !== before[i])).toEqual([]);
    expect(drained).toEqual(assign(ids.filter((_, i) => i !== 2).map((id) => new FakeMember(id))));
  });

  it('consistent hash: finds the available target past a down one when a drained target comes first', () => {
    const members = [
      new FakeMember('http://drained:80', 0),
      new FakeMember('http://up:80'),
      new FakeMember('http://down:80'),
    ];
    members[2]!.available = false;
    const balancer = createConsistentHashBalancer(members, (c) => c.clientIp);
    const picked = new Set(
      keys.slice(0, 500).map((key) => members[balancer.pick(context(key))]?.id ?? 'none'),
    );
    expect([...picked]).toEqual(['http://up:80']);
  });

  it('consistent hash: refuses a pick when every target above weight 0 is down', () => {
    const members = Array.from(
      { length: 20 },
      (_, i) => new FakeMember(`http://10.3.0.${i}:80`, i < 10 ? 0 : 1),
    );
    for (const member of members) member.available = false;
    const balancer = createConsistentHashBalancer(members, (c) => c.clientIp);
    for (const key of keys.slice(0, 20)) expect(balancer.pick(context(key))).toBe(-1);
  });
});
