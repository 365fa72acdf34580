drop index if exists usage_batches_applied_at;
drop index if exists usage_counts_hour;
