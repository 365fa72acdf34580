import { z } from 'zod';

/**
 * A tenant's or a resource's id as a read names it (path or query): a uuid, in the one spelling the
 * event log, the config folds and every per-tenant limit know it by, lower case. PostgreSQL's uuid
 * columns match any case: an id kept as sent would reach the tenant's rows, and grant its members
 * access, under a spelling with a config read budget, a usage read gate and request places of its own.
 */
export const idParam = (message = 'must be a uuid') => z.uuid(message).transform((id) => id.toLowerCase());
