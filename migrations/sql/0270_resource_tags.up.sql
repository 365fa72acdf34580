-- Tags on origins and routes (shared/src/domain/resource-tags.ts): lists filter on them (?tags=).
-- Rows of resources recorded before tags existed have none.
alter table read_models.origins add column tags jsonb not null default '[]'::jsonb;
alter table read_models.routes add column tags jsonb not null default '[]'::jsonb;
