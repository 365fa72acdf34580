-- Audit log pages bounded in time (GET /api/v1/audit-log?from=…&to=…,
-- services/control-plane/src/queries/audit-log.ts) walked the tenant's rows newest first until they
-- reached the range: an old range cost a read of the tenant's whole newer history. occurred_at is
-- stamped by the control plane before the append, so it does not grow with position; occurred_high,
-- the latest occurred_at at or before the row's position in the log, does, and translates a time range
-- into a range of positions. The rows occurred more than a minute before occurred_high (a slow command,
-- a skewed clock), or written without it, are indexed apart and read on their own.
alter table read_models.audit_log add column occurred_high timestamptz;
update read_models.audit_log a
   set occurred_high = h.high
  from (select position, max(occurred_at) over (order by position) as high from read_models.audit_log) h
 where a.position = h.position;
create index audit_log_occurred_high on read_models.audit_log (occurred_high, position);
-- Without statistics on the lateness, the planner takes a third of the rows for late and prefers
-- reading a whole time range through audit_log_occurred_at to the late rows' indexes.
create statistics read_models.audit_log_lateness on (occurred_high - occurred_at) from read_models.audit_log;
create index audit_log_tenant_late on read_models.audit_log (tenant_id, occurred_at, position)
  where occurred_high is null or occurred_high - occurred_at > interval '1 minute';
create index audit_log_late on read_models.audit_log (occurred_at, position)
  where occurred_high is null or occurred_high - occurred_at > interval '1 minute';
