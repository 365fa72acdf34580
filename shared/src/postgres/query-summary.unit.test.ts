import { describe, expect, it } from 'vitest';
import { postgresQuerySummary } from './query-summary.js';

describe('postgresQuerySummary', () => {
  it('names the operation and the table it reads or writes', () => {
    expect(postgresQuerySummary('select id, name from read_models.routes where tenant_id = $1')).toEqual({
      operation: 'SELECT',
      collection: 'read_models.routes',
      summary: 'SELECT read_models.routes',
    });
    expect(
      postgresQuerySummary('INSERT INTO projection_checkpoints (name, position) VALUES ($1, $2)'),
    ).toEqual({
      operation: 'INSERT',
      collection: 'projection_checkpoints',
      summary: 'INSERT projection_checkpoints',
    });
    expect(postgresQuerySummary('update only tenants set name = $1 where id = $2')).toMatchObject({
      summary: 'UPDATE tenants',
      collection: 'tenants',
    });
    expect(postgresQuerySummary('delete from "audit_log" where id = $1')).toMatchObject({
      summary: 'DELETE audit_log',
    });
  });

  it('names a function called as the target, not as a collection', () => {
    expect(
      postgresQuerySummary(
        'select next_expected_revision, last_position from event_store_append($1, $2, $3, $4, $5::jsonb[], $6::jsonb[], $7, $8)',
      ),
    ).toEqual({ operation: 'SELECT', summary: 'SELECT event_store_append' });
    expect(postgresQuerySummary('select pg_advisory_xact_lock(hashtext($1))')).toEqual({
      operation: 'SELECT',
      summary: 'SELECT pg_advisory_xact_lock',
    });
  });

  it('skips comments, subqueries and common table expressions', () => {
    const text = `-- the newest per tenant
      with newest as (select tenant_id, max(position) from snapshot_state group by 1)
      /* then */ update snapshot_state s set published = true from newest where s.tenant_id = newest.tenant_id`;
    expect(postgresQuerySummary(text)).toMatchObject({
      operation: 'UPDATE',
      summary: 'UPDATE snapshot_state',
    });
    expect(postgresQuerySummary('select count(*) from (select 1 from events where x = $1) as e')).toEqual({
      operation: 'SELECT',
      summary: 'SELECT',
    });
  });

  it('skips a block comment to its own end, past the comments nested in it (as PostgreSQL reads them)', () => {
    expect(postgresQuerySummary('select * from /* by /* the */ acme_secret_note */ tenants')).toEqual({
      operation: 'SELECT',
      collection: 'tenants',
      summary: 'SELECT tenants',
    });
    expect(postgresQuerySummary('/* a /* b */ c */ delete from routes')?.summary).toBe('DELETE routes');
    expect(postgresQuerySummary('select 1 /* never closed /* */')).toEqual({
      operation: 'SELECT',
      summary: 'SELECT',
    });
  });

  it('never carries a literal value of the statement', () => {
    expect(postgresQuerySummary("begin; set local statement_timeout = 5000; select 'secret'")).toEqual({
      operation: 'BEGIN',
      summary: 'BEGIN',
    });
    expect(postgresQuerySummary("select * from tenants where subdomain = 'acme'")?.summary).toBe(
      'SELECT tenants',
    );
    expect(postgresQuerySummary("select 'from x' as label")).toEqual({
      operation: 'SELECT',
      summary: 'SELECT',
    });
    expect(postgresQuerySummary('select $$from evil$$ as label')).toEqual({
      operation: 'SELECT',
      summary: 'SELECT',
    });
    expect(postgresQuerySummary("select e'it\\'s from x' as label")).toEqual({
      operation: 'SELECT',
      summary: 'SELECT',
    });
  });

  it('has no summary for text that starts with no keyword it knows', () => {
    expect(postgresQuerySummary('')).toBeUndefined();
    expect(postgresQuerySummary("'acme'")).toBeUndefined();
    expect(postgresQuerySummary('frobnicate everything')).toBeUndefined();
  });
});
