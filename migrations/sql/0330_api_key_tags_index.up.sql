-- A key list filtered by tags (?tags=a,b / a/b, services/control-plane/src/queries/tag-filter.ts) finds its
-- keys through this index: walked in creation order instead, a tag few keys carry read every key of the
-- tenant, its revoked ones (which TENANT_MAX_API_KEYS does not bound) included, for each page.
create index api_keys_tags on read_models.api_keys using gin (tags);
