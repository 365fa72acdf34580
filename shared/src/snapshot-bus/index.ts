export * from './codec.js';
export * from './in-memory-snapshot-bus.js';
export * from './kafka-snapshot-bus.js';
export * from './kafka-topic.js';
export * from './port.js';
export * from './rollout-registry.js';
export * from './settings.js';
