import { verificationRecordName } from '@vantageedge/shared/domain/hostname';
import type pg from 'pg';
import { verificationExpiresAt } from '../domain/custom-domain.js';
import type { CustomDomainResource, Listed } from '../schemas/resources.js';

/** A tenant's custom domains from `read_models.custom_domains`, as the admin API shows them. */

interface CustomDomainRow {
  id: string;
  tenant_id: string;
  domain: string;
  status: 'pending' | 'verified';
  verification_token: string;
  verified_at: Date | null;
  verification_method: 'dns_txt' | 'platform_admin' | null;
  created_at: Date;
  updated_at: Date;
  revision: string;
}

function present(row: CustomDomainRow): CustomDomainResource {
  return {
    id: row.id,
    tenant_id: row.tenant_id,
    domain: row.domain,
    status: row.status,
    verification: {
      type: 'dns-txt',
      name: verificationRecordName(row.domain),
      value: row.verification_token,
      expires_at:
        row.status === 'pending'
          ? verificationExpiresAt({ created_at: row.created_at.toISOString() }).toISOString()
          : null,
    },
    verified_at: row.verified_at?.toISOString() ?? null,
    verification_method: row.verification_method,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
  };
}

const COLUMNS = `id, tenant_id, domain, status, verification_token, verified_at, verification_method,
  created_at, updated_at, revision`;

/**
 * Every domain of the tenant, oldest claim first (at most 50 per tenant, so one page), each with its
 * revision: a client removes or verifies the domain as listed (If-Match), not one claimed again since.
 */
export async function listCustomDomains(
  pool: pg.Pool,
  tenantId: string,
): Promise<Array<Listed<CustomDomainResource>>> {
  const { rows } = await pool.query<CustomDomainRow>(
    `select ${COLUMNS} from read_models.custom_domains where tenant_id = $1 order by created_position`,
    [tenantId],
  );
  return rows.map((row) => ({ ...present(row), revision: row.revision }));
}

export async function getCustomDomain(
  pool: pg.Pool,
  tenantId: string,
  domain: string,
): Promise<{ resource: CustomDomainResource; revision: string } | null> {
  const { rows } = await pool.query<CustomDomainRow>(
    `select ${COLUMNS} from read_models.custom_domains where tenant_id = $1 and domain = $2`,
    [tenantId, domain],
  );
  const row = rows[0];
  return row ? { resource: present(row), revision: row.revision } : null;
}
