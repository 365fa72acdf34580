import { startClusters } from './cluster.js';
import checkInfrastructure from './global-setup.js';

/**
 * The `cluster` test project (`make test-cluster`): the single-node servers must run (the tests create
 * their databases on the shared PostgreSQL), and the Redis Cluster and three-broker Kafka are started
 * here through infra/ when they are not running yet.
 */
export default async function setupClusters(): Promise<void> {
  await checkInfrastructure();
  await startClusters();
}
