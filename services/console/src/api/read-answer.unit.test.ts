import { requestExplanation } from '@vantageedge/shared/domain/request-explanation';
import { explanationWithoutRoute } from '@vantageedge/shared/testing/explanations';
import { describe, expect, it } from 'vitest';
import { ApiProblem } from './client.js';
import { readAnswer } from './read-answer.js';

/** The explain answer for a host no tenant is served on: every step after the host is empty. */
const unknownHost = explanationWithoutRoute({
  tenantId: '7b0c2c52-9e42-4a43-9a5c-3c2f4f7b8e11',
  host: 'other.localhost',
  resolves: false,
  hostReason: 'the subdomain "other" is not this tenant\'s (its subdomain is "acme")',
  path: '/',
  decision: {
    stage: 'host',
    status: 404,
    code: 'tenant_not_found',
    message: 'no tenant is served on this host',
  },
});

describe('the console reads an explain answer with the shared schema', () => {
  it('takes an explanation as the control plane sent it', () => {
    expect(readAnswer(requestExplanation, 200, unknownHost)).toEqual(unknownHost);
  });

  it('shows an answer of another shape as a problem naming the wrong fields', () => {
    const { decision: _, ...withoutDecision } = unknownHost;
    let problem: unknown;
    try {
      readAnswer(requestExplanation, 200, { ...withoutDecision, routes: 'none' });
    } catch (thrown) {
      problem = thrown;
    }
    expect(problem).toBeInstanceOf(ApiProblem);
    expect(problem).toMatchObject({ status: 200, code: 'unreadable_answer' });
    expect((problem as ApiProblem).message).toContain('cannot read');
    expect((problem as ApiProblem).details.map((detail) => detail.field).sort()).toEqual([
      'decision',
      'routes',
    ]);
  });
});
