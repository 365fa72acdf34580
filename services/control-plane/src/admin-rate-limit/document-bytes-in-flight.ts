import type { Request, Response } from 'express';
import type { TenantAccess } from '../auth/caller.js';
import { rateLimited } from '../domain/errors.js';
import { releaseWhenAnswered } from './in-flight-counter.js';

/**
 * A tenant document in flight (POST …/config/plan, …/config/apply) costs the process far more than its
 * bytes: its body, its parse, its validation and its plan (measured: a 3.6 MB document of 17,000 routes,
 * some 120 MB of heap and 3–4 s of the one thread). The per-tenant and per-caller limits count requests,
 * not their size, so a few tenants' admins each sending a handful of large documents at once took the
 * process to gigabytes. So the documents of all tenants hold at most `maxBytes` at once on a replica,
 * one tenant's at most half of it: a document takes its announced size (Content-Length; without one,
 * or compressed, the document limit) once access to its tenant is granted, before its body is read, and holds it until
 * it is answered. One document is always let in when nothing else is held, so a document within the
 * document limit is never refused for good.
 *
 * A tenant's callers with read access only (members, viewers, other org roles: they may plan) hold at
 * most half of its share together: an upload a viewer starts and never finishes holds its bytes, so
 * without it a leaked read-only token held the whole share and the tenant's admins could apply nothing.
 * One reader's document is let in alone whatever its size (within the document limit); past the readers'
 * half it takes nothing from the writers' half.
 */
export const DEFAULT_DOCUMENT_BYTES_IN_FLIGHT = 16 * 1024 * 1024;

export interface DocumentBytesInFlight {
  /**
   * Holds the document's bytes for `tenantId`, sent by a caller with `access` to it, until `res` is
   * answered; throws 429 past the budget, the tenant's share or its readers' half of it.
   */
  hold(tenantId: string, access: Exclude<TenantAccess, 'none'>, req: Request, res: Response): void;
}

export function limitDocumentBytesInFlight(
  maxBytes: number,
  documentLimitBytes: number,
  /** Told the bytes held each time they change. */
  onHeld: (bytes: number) => void = () => {},
): DocumentBytesInFlight {
  const tenantShare = Math.floor(maxBytes / 2);
  const readersShare = Math.floor(tenantShare / 2);
  const byTenant = new Map<string, number>();
  const byTenantReaders = new Map<string, number>();
  let held = 0;
  const refuse = (field: string, issue: string) =>
    rateLimited(
      'admin_rate_limited',
      'too many tenant documents are being processed at once: retry in 1 s',
      field,
      issue,
      1,
    );
  return {
    hold(tenantId, access, req, res) {
      if (maxBytes === 0) return;
      const announced = Number(req.get('content-length'));
      // Past the document limit the body is refused unread (413): it holds nothing.
      if (announced > documentLimitBytes) return;
      // A compressed body is as large as it inflates to (express.json inflates gzip, deflate and br up to
      // the document limit): its Content-Length said a hundredth of what it held.
      const encoding = req.get('content-encoding')?.trim().toLowerCase();
      const plain = encoding === undefined || encoding === '' || encoding === 'identity';
      const bytes =
        plain && Number.isSafeInteger(announced) && announced >= 0 ? announced : documentLimitBytes;
      const reader = access !== 'write';
      const ofTenant = byTenant.get(tenantId) ?? 0;
      const ofReaders = byTenantReaders.get(tenantId) ?? 0;
      // A reader's document larger than the readers' half (a document limit above it) is let in alone:
      // the writers count no more of the readers' bytes than that half, so the rest stays theirs.
      const counted = reader ? ofTenant : ofTenant - Math.max(0, ofReaders - readersShare);
      if (ofTenant > 0 && counted + bytes > tenantShare) {
        throw refuse(
          'tenant_document_bytes_in_flight',
          `one tenant's documents may hold ${tenantShare} bytes at once (half of CONTROL_PLANE_DOCUMENT_BYTES_IN_FLIGHT)`,
        );
      }
      if (reader && ofReaders > 0 && ofReaders + bytes > readersShare) {
        throw refuse(
          'tenant_document_bytes_in_flight',
          `the documents of one tenant's read-only callers may hold ${readersShare} bytes at once (half of the tenant's share, the rest is for its writers)`,
        );
      }
      if (held > 0 && held + bytes > maxBytes) {
        throw refuse(
          'document_bytes_in_flight',
          `all tenants' documents may hold ${maxBytes} bytes at once (CONTROL_PLANE_DOCUMENT_BYTES_IN_FLIGHT)`,
        );
      }
      held += bytes;
      onHeld(held);
      byTenant.set(tenantId, ofTenant + bytes);
      if (reader) byTenantReaders.set(tenantId, ofReaders + bytes);
      releaseWhenAnswered(res, () => {
        held -= bytes;
        onHeld(held);
        giveBack(byTenant, tenantId, bytes);
        if (reader) giveBack(byTenantReaders, tenantId, bytes);
      });
    },
  };
}

function giveBack(held: Map<string, number>, tenantId: string, bytes: number): void {
  const left = (held.get(tenantId) ?? bytes) - bytes;
  if (left <= 0) held.delete(tenantId);
  else held.set(tenantId, left);
}
