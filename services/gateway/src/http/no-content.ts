import type { OutgoingHttpHeaders } from 'node:http';
import { STATUSES_WITHOUT_BODY } from '@vantageedge/shared/domain/route-policies';

/** RFC 9110 §6.4.1: a 204, 205 or 304 answer never carries content, whatever an origin or an entry holds. */
export function hasNoContent(status: number): boolean {
  return STATUSES_WITHOUT_BODY.includes(status);
}

/**
 * The Content-Length of such an answer: none on a 204 (a sender must not give one, and HTTP/2 clients
 * reset a stream announcing content there), 0 on a 205 (§15.3.6: its content is empty), and a 304's
 * own, which is the length of the representation it stands for.
 */
export function frameNoContent(status: number, headers: OutgoingHttpHeaders): void {
  if (status === 204) delete headers['content-length'];
  else if (status === 205) headers['content-length'] = '0';
}
