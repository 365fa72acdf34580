-- Usage retention (projections/src/usage/usage-flusher.ts): the usage flusher deletes, in chunks,
-- usage_counts rows of hours older than USAGE_RETENTION_DAYS and usage_batches ids applied more than
-- the dedupe window ago (14 days). These indexes let each chunk find its rows without a full scan
-- (the primary key of usage_counts leads with tenant_id, not hour).
create index usage_counts_hour on usage_counts (hour);
create index usage_batches_applied_at on usage_batches (applied_at);
