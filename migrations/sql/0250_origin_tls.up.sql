-- An origin's TLS settings (verify, ca_certificates, server_name: shared/src/domain/gateway-config.ts
-- originTls). Null in the rows of origins recorded before they existed: the defaults (verified against
-- the gateways' trust store, for the target URL's host).
alter table read_models.origins add column tls jsonb;
