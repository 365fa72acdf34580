import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  EXAMPLE_CANARY_ORIGIN_ID,
  EXAMPLE_ORIGIN_ID,
  EXAMPLE_TENANT_ID,
  ROUTE_POLICY_EXAMPLES,
} from './route-policy-examples.js';

/**
 * The README's "Route policies" curl examples are the OpenAPI document's route examples, which
 * route-policies.int.test.ts sends to the real API: a README body that drifts from them (a renamed
 * field, a value the API refuses) fails here.
 */
const readme = readFileSync(new URL('../../../../README.md', import.meta.url), 'utf8');

function routePolicySection(): string {
  const start = readme.indexOf('\n## Route policies\n');
  expect(start, 'README has a "Route policies" section').toBeGreaterThan(0);
  const end = readme.indexOf('\n## ', start + 1);
  return readme.slice(start, end < 0 ? undefined : end);
}

/** The JSON bodies of the section's `route -d '…'` calls, with the shell's ids spliced back in. */
function curlBodies(section: string): unknown[] {
  const spliced = section
    .replaceAll(`"'$TENANT'"`, `"${EXAMPLE_TENANT_ID}"`)
    .replaceAll(`"'$ORIGIN'"`, `"${EXAMPLE_ORIGIN_ID}"`)
    .replaceAll(`"'$CANARY'"`, `"${EXAMPLE_CANARY_ORIGIN_ID}"`);
  return [...spliced.matchAll(/route -d '(\{[\s\S]*?\})'\n/g)].map((match) => JSON.parse(match[1] ?? ''));
}

describe('README route policy examples', () => {
  it('shows a curl example for every OpenAPI route policy example, and no other body', () => {
    const bodies = curlBodies(routePolicySection());
    const examples = Object.values(ROUTE_POLICY_EXAMPLES).map((example) => example.value);
    expect(bodies).toHaveLength(examples.length);
    for (const example of examples) expect(bodies).toContainEqual(example);
  });

  it("has its route helper wait for the rollout, since the section's curl calls follow a create at once", () => {
    // Copied as they stand, a create answered before the gateways served it made the next curl a 404.
    const section = routePolicySection();
    expect(section).toMatch(/curl -si? [^\n]*http:\/\/acme\.localhost:8000\//);
    const helper = section.match(/^route\(\) \{ curl [^\n]*\}$/m)?.[0];
    expect(helper, 'the route() helper').toBeDefined();
    expect(helper).toMatch(/"\$CP\/api\/v1\/routes\?wait_for_rollout=\d+s"/);
  });

  it('covers every route policy field', () => {
    const fields = new Set(
      Object.values(ROUTE_POLICY_EXAMPLES).flatMap((example) => Object.keys(example.value)),
    );
    for (const field of [
      'cors',
      'ip_rules',
      'request_headers',
      'response_headers',
      'rewrite_path',
      'preserve_host',
      'query',
      'timeouts',
      'retries',
      'max_body_bytes',
      'max_header_bytes',
      'traffic_split',
      'match',
      'fixed_response',
      'redirect',
    ]) {
      expect(fields, field).toContain(field);
    }
  });
});
