import {
  ORIGIN_BLOCKED_CIDRS_ALLOWING_LOOPBACK,
  OriginAddressPolicy,
} from '@vantageedge/shared/net/origin-address-policy';
import { describe, expect, it, vi } from 'vitest';
import { type ResolveCallback, TenantDnsLookups } from '../upstream/dns-lookups.js';
import { RemoteJwksRegistry } from './jwks.js';

const ANY_TOKEN = { payload: '', signature: '' };

/** A replica's lookups with one thread, whose names are answered only when the test says so. */
function heldLookups() {
  const started: Array<{ name: string; answer: ResolveCallback }> = [];
  const lookups = new TenantDnsLookups({
    maxRunning: 1,
    resolve: (name, _options, answer) => started.push({ name, answer }),
  });
  // Every name asked for, started or waiting for its turn.
  const asked: string[] = [];
  const forTenant = lookups.forTenant.bind(lookups);
  vi.spyOn(lookups, 'forTenant').mockImplementation((turn) => {
    const resolve = forTenant(turn);
    return (hostname, options, callback) => {
      asked.push(hostname);
      resolve(hostname, options, callback);
    };
  });
  const jwks = new RemoteJwksRegistry({
    addressPolicy: new OriginAddressPolicy(ORIGIN_BLOCKED_CIDRS_ALLOWING_LOOPBACK),
    dnsLookups: lookups,
  });
  /** A token for the key set of `url`, once its fetch asked for the set's name. */
  const fetchStarted = async (url: string) => {
    const getKey = jwks.acquire(url).getKey;
    Promise.resolve(getKey({ alg: 'RS256', kid: 'k1' }, ANY_TOKEN)).catch(() => {});
    const name = new URL(url).hostname;
    await vi.waitFor(() => expect(asked).toContain(name), { timeout: 10_000 });
  };
  return { started, lookups, jwks, fetchStarted };
}

const timedOut = () => Object.assign(new Error('timeout'), { code: 'EAI_AGAIN' });

/**
 * Regression test: a key set's name is looked up in a turn of its own (one per host name), among the
 * origins' lookups. A lookup that waited for its turn stayed in line after its set was released, so a
 * tenant pointing its jwks_url at one host name after another whose name servers never answer (and
 * sending a token after each change) put a turn per name ahead of every other tenant's origin lookups:
 * each held a thread for the resolver's whole timeout when it came, and the other tenants' new
 * connections waited for all of them. A released set's lookups that have not started leave the line.
 */
describe('the name lookups of a released key set', () => {
  it('leave the line, so that other tenants’ lookups do not wait behind them', async () => {
    const { started, lookups, jwks, fetchStarted } = heldLookups();
    for (let i = 1; i <= 4; i++) {
      const url = `http://stall${i}.jwks.test/jwks`;
      await fetchStarted(url);
      jwks.release(url);
    }
    // The first name holds the only thread; the others' sets are gone.
    expect(started.map((lookup) => lookup.name)).toEqual(['stall1.jwks.test']);

    const answered: string[] = [];
    lookups.forTenant('other-tenant')('origin.other.test', {}, (error) => answered.push(error?.code ?? 'ok'));
    started[0]!.answer(timedOut(), []);
    // The thread goes to the other tenant's origin, not to a name no snapshot names any more.
    expect(started.map((lookup) => lookup.name)).toEqual(['stall1.jwks.test', 'origin.other.test']);
    started[1]!.answer(null, [{ address: '192.0.2.7', family: 4 }]);
    expect(answered).toEqual(['ok']);
    expect(started).toHaveLength(2);
  });

  it('stay in line while another kept set names the same host', async () => {
    const { started, jwks, fetchStarted } = heldLookups();
    await fetchStarted('http://holder.jwks.test/jwks');
    await fetchStarted('http://shared.jwks.test/a/jwks');
    jwks.acquire('http://shared.jwks.test/b/jwks');
    jwks.release('http://shared.jwks.test/b/jwks');
    started[0]!.answer(timedOut(), []);
    // The kept set's fetch still waits for its name.
    expect(started.map((lookup) => lookup.name)).toEqual(['holder.jwks.test', 'shared.jwks.test']);
    started[1]!.answer(timedOut(), []);
  });
});
