import type { RequestExplanation } from '@vantageedge/shared/domain/request-explanation';
import { HIDDEN_CHARACTERS } from '@vantageedge/shared/domain/visible-text';
import { explanationWithoutRoute } from '@vantageedge/shared/testing/explanations';
import { describe, expect, it } from 'vitest';
import { renderedText } from '../testing/rendered-text.js';
import { ExplanationView } from './explanation-view.js';

const RAW_HIDDEN = new RegExp(`[${HIDDEN_CHARACTERS}]`, 'u');

/**
 * The explanation of a request whose host, path and header the viewer typed with hidden characters
 * (a right-to-left override, a zero-width space, an isolate, a control character), echoed in the
 * reasons as the control plane writes them.
 */
const answer: RequestExplanation = {
  ...explanationWithoutRoute({
    tenantId: '7b0c2c52-9e42-4a43-9a5c-3c2f4f7b8e11',
    host: 'acme.localhost',
    hostReason: 'the subdomain "acme\u200b" is this tenant\'s',
    path: '/api/\u202eusers',
    routes: [
      {
        id: '2d3c1a52-9e42-4a43-9a5c-3c2f4f7b8e11',
        path_pattern: '/api/\u2066*',
        methods: [],
        priority: 0,
        rank: 1,
        method_matches: true,
        path_matches: false,
        selected: false,
        reason: 'the header "x-tier" is "gold\u202e" here, not "silver"',
      },
    ],
    decision: {
      stage: 'route',
      status: 404,
      code: 'route_not_found',
      message: 'no route matches "/api/\u202eusers"',
    },
  }),
  cache: { enabled: true, decision: 'bypass', reason: 'bypass_header x-debug\u0007' },
};

/**
 * Regression test: the explain tab showed the reasons, the decision and the paths verbatim, and they
 * echo what the viewer typed (and the routes' own patterns): a bidi override made a reason read as
 * another one, as in the names the console already shows with their escapes.
 */
describe('an explanation shown in the console', () => {
  it('shows its reasons, decision and paths with their hidden characters as escapes', () => {
    const text = renderedText(ExplanationView({ answer }));
    expect(text).not.toMatch(RAW_HIDDEN);
    expect(text).toContain('no route matches "/api/\\u202eusers"');
    expect(text).toContain('the subdomain "acme\\u200b" is this tenant\'s');
    expect(text).toContain('/api/\\u2066*');
    expect(text).toContain('the header "x-tier" is "gold\\u202e" here, not "silver"');
    expect(text).toContain('bypass (bypass_header x-debug\\u0007)');
  });
});
