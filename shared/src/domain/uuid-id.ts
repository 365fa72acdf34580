import { z } from 'zod';

/**
 * A tenant's or a resource's id as a request names it: a uuid, read in its one spelling, lower case.
 * Event streams (`route-<id>`), the config folds and every per-tenant limit know an id by that spelling,
 * while PostgreSQL's uuid columns match any case: an id kept as sent would be another stream, another
 * budget, another tenant to the authorizer, for the very same resource; a read would reach the
 * tenant's rows, and grant its members access, under a spelling with read budgets of its own.
 */
export const uuidId = (message = 'must be a uuid') => z.uuid(message).toLowerCase();
