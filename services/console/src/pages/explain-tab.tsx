import {
  explainRequestHeaders,
  type RequestExplanation,
  requestExplanation,
} from '@vantageedge/shared/domain/request-explanation';
import { useRef, useState } from 'preact/hooks';
import { useApi } from '../api/context.js';
import { readAnswer } from '../api/read-answer.js';
import { ErrorNotice } from '../ui/components.js';
import { ExplanationView } from './explanation-view.js';

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;

/** "Name: value" per line → the explain request's headers (lines without a name are ignored). */
export function parseHeaders(text: string): Record<string, string | string[]> {
  const lines: Array<[string, string]> = [];
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    const name = line.slice(0, Math.max(colon, 0)).trim();
    if (name !== '') lines.push([name, line.slice(colon + 1).trim()]);
  }
  return explainRequestHeaders(lines);
}

/** What the gateways would do with a request, computed by their own matcher and rules, now or at a past position. */
export function ExplainTab({ tenantId, subdomain }: { tenantId: string; subdomain: string }) {
  const api = useApi();
  const [method, setMethod] = useState<string>('GET');
  const [host, setHost] = useState(`${subdomain}.localhost`);
  const [path, setPath] = useState('/');
  const [headers, setHeaders] = useState('');
  const [atPosition, setAtPosition] = useState('');
  const [clientIp, setClientIp] = useState('');
  const [answer, setAnswer] = useState<RequestExplanation | null>(null);
  const [error, setError] = useState<unknown>(null);

  // Only the newest Explain's answer is shown: an earlier one answering late is for another request.
  const newest = useRef(0);

  async function explain(event: Event) {
    event.preventDefault();
    setError(null);
    const asked = ++newest.current;
    try {
      const response = await api.send<unknown>('POST', `/api/v1/tenants/${tenantId}/explain`, {
        body: {
          method,
          host,
          path,
          headers: parseHeaders(headers),
          ...(atPosition.trim() ? { at_position: atPosition.trim() } : {}),
          ...(clientIp.trim() ? { client_ip: clientIp.trim() } : {}),
        },
      });
      if (asked !== newest.current) return;
      setAnswer(readAnswer(requestExplanation, response.status, response.body));
    } catch (problem) {
      if (asked !== newest.current) return;
      setAnswer(null);
      setError(problem);
    }
  }

  return (
    <div>
      <form id="explain-form" class="form" onSubmit={explain}>
        <label>
          Method
          <select name="method" value={method} onChange={(e) => setMethod(e.currentTarget.value)}>
            {METHODS.map((name) => (
              <option key={name}>{name}</option>
            ))}
          </select>
        </label>
        <label>
          Host
          <input name="host" value={host} onInput={(e) => setHost(e.currentTarget.value)} />
        </label>
        <label>
          Path (with query)
          <input name="path" value={path} onInput={(e) => setPath(e.currentTarget.value)} />
        </label>
        <label>
          Headers (one "Name: value" per line)
          <textarea
            name="headers"
            rows={3}
            value={headers}
            onInput={(e) => setHeaders(e.currentTarget.value)}
          />
        </label>
        <label>
          At event position (empty: now)
          <input
            name="at_position"
            value={atPosition}
            onInput={(e) => setAtPosition(e.currentTarget.value)}
          />
        </label>
        <label>
          Client address (empty: IP rules depend on it)
          <input name="client_ip" value={clientIp} onInput={(e) => setClientIp(e.currentTarget.value)} />
        </label>
        <button type="submit">Explain</button>
      </form>
      <ErrorNotice error={error} />
      {answer && <ExplanationView answer={answer} />}
    </div>
  );
}
