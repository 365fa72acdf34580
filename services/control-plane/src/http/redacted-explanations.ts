import { redactedCredentials } from '@vantageedge/shared/domain/credential-headers';
import type { RequestHandler } from 'express';

/**
 * The explain answer as it leaves the control plane: `policies.request_headers` and `policies.query`
 * echo the route's transforms, whose credential values are write-only (README "Route policies"), so
 * every `request_headers` and `query` transform in the answer shows them as `<redacted>`. Presentation only: the explanation itself
 * (explain/) works on the real snapshot.
 */
export function redactedExplanations(): RequestHandler {
  return (_req, res, next) => {
    const send = res.json.bind(res);
    res.json = (body?: unknown) => send(redactedCredentials(body));
    next();
  };
}
