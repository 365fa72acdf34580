-- Tenant TLS certificates (read model of CertificateUploaded / CertificateKeyResealed /
-- CertificateDeleted). Public parts only: the private key lives sealed in the events and snapshots
-- and never in a read model.
create table read_models.certificates (
  id uuid primary key,
  tenant_id uuid not null,
  domains jsonb not null,
  certificate_pem text not null,
  fingerprint_sha256 text not null,
  subject text not null,
  issuer text not null,
  serial_number text not null,
  dns_names jsonb not null,
  key_type text not null,
  not_before timestamptz not null,
  not_after timestamptz not null,
  created_at timestamptz not null,
  updated_at timestamptz not null,
  revision bigint not null,
  position bigint not null,
  created_position bigint not null
);
create index certificates_tenant on read_models.certificates (tenant_id, created_position);
