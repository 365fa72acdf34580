-- Tags on API keys (shared/src/domain/resource-tags.ts): key lists filter on them (?tags=).
-- Keys issued before keys had tags have none.
alter table read_models.api_keys add column tags jsonb not null default '[]'::jsonb;
