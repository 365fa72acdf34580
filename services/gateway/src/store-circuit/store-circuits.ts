import type { TenantNodeOf } from '@vantageedge/shared/redis/tenant-node';
import { createStoreCircuit, type StoreCircuit, type StoreCircuitOptions } from './store-circuit.js';

/**
 * One store circuit per Redis node (store-circuit.ts), chosen by the tenant whose keys a call touches.
 *
 * On a Redis Cluster each tenant's keys live on one master (the `{tenant_id}` hash tag): a master that
 * fails, or one hot tenant's traffic that overloads it until its commands time out, opens the circuit of
 * that master only, and the tenants on the other masters keep being decided by Redis. With a single
 * server (and while a Cluster client has not learnt the slot table yet) every tenant shares one circuit.
 */
export interface StoreCircuits {
  /** The circuit around the node serving the tenant's keys. */
  of(tenantId: string): StoreCircuit;
  /** Some node's circuit is open or half-open. */
  readonly degraded: boolean;
}

export interface StoreCircuitsOptions extends Omit<StoreCircuitOptions, 'onOpen' | 'onClose'> {
  /** Where a tenant's keys live (tenant-node.ts); none: one circuit for every tenant. */
  nodeOf?: TenantNodeOf | undefined;
  /** `node` is the node's host:port, or '' for the circuit shared while the node is not known. */
  onOpen?: (node: string, openCircuits: number) => void;
  onClose?: (node: string, openCircuits: number) => void;
}

/** The circuit of calls whose node is not known (a single server: all of them). */
const SHARED = '';

export function createStoreCircuits(options: StoreCircuitsOptions = {}): StoreCircuits {
  const { nodeOf, onOpen, onClose, ...circuitOptions } = options;
  // One per node that has served a tenant: as many as the Cluster has had masters.
  const circuits = new Map<string, StoreCircuit>();
  // A failed half-open trial opens a circuit again (onOpen once more): count nodes, not openings.
  const openNodes = new Set<string>();
  const circuitOf = (node: string): StoreCircuit => {
    let circuit = circuits.get(node);
    if (circuit === undefined) {
      circuit = createStoreCircuit({
        ...circuitOptions,
        onOpen() {
          openNodes.add(node);
          onOpen?.(node, openNodes.size);
        },
        onClose() {
          openNodes.delete(node);
          onClose?.(node, openNodes.size);
        },
      });
      circuits.set(node, circuit);
    }
    return circuit;
  };
  const shared = circuitOf(SHARED);
  return {
    of: nodeOf ? (tenantId) => circuitOf(nodeOf(tenantId) ?? SHARED) : () => shared,
    get degraded() {
      for (const circuit of circuits.values()) if (circuit.degraded) return true;
      return false;
    },
  };
}

/** The node a circuit is around, for its log lines (none for the shared circuit). */
export function nodeField(node: string): Record<string, string> {
  return node ? { redis_node: node } : {};
}
