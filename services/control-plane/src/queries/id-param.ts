import { uuidId } from '@vantageedge/shared/domain/uuid-id';

/**
 * A tenant's or a resource's id as a read names it (path or query), in its one spelling, lower case:
 * PostgreSQL's uuid columns match any case, so an id kept as sent would reach the tenant's rows, and
 * grant its members access, under a spelling with a config read budget, a usage read gate and request
 * places of its own.
 */
export const idParam = uuidId;
