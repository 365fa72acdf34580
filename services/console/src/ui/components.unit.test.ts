import { HIDDEN_CHARACTERS } from '@vantageedge/shared/domain/visible-text';
import { describe, expect, it } from 'vitest';
import { ApiProblem } from '../api/client.js';
import { renderedText } from '../testing/rendered-text.js';
import { ErrorNotice, FieldProblems, issuesFromProblem } from './components.js';

const RAW_HIDDEN = new RegExp(`[${HIDDEN_CHARACTERS}]`, 'u');

/**
 * Regression tests: a field's problem was shown as the API (or the form's own check) stated it, and
 * those messages echo what the viewer entered: a right-to-left override in a value made the issue read
 * as another one (`"evil\u202emoc.elgoog"` is drawn as `"evilgoogle.com"`).
 */
describe('a field problem shown next to its field', () => {
  const problem = new ApiProblem(400, 'validation_failed', 'the request is invalid', [
    { field: 'name', issue: 'is taken by "orders\u200b"' },
    { field: 'request_headers.set.x-evil\u202e', issue: 'is not a header name: "x-evil\u202emoc"' },
  ]);

  it('shows the API issue with its hidden characters as escapes', () => {
    const text = renderedText(FieldProblems({ issues: issuesFromProblem(problem), field: 'name' }));
    expect(text).toBe('is taken by "orders\\u200b"');
  });

  it("shows a nested field's path and issue with their hidden characters as escapes", () => {
    const text = renderedText(
      FieldProblems({ issues: issuesFromProblem(problem), field: 'request_headers' }),
    );
    expect(text).toBe('set.x-evil\\u202e: is not a header name: "x-evil\\u202emoc"');
    expect(text).not.toMatch(RAW_HIDDEN);
  });

  it('shows a failure that is not an API problem with its hidden characters as escapes', () => {
    const text = renderedText(ErrorNotice({ error: new Error('is not JSON: "\u2066x\u2069"') }));
    expect(text).toBe('is not JSON: "\\u2066x\\u2069"');
  });
});
