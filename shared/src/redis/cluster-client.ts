import {
  type ChainableCommander,
  Cluster,
  type ClusterNode,
  type ClusterOptions,
  type Command,
  type Redis,
} from 'ioredis';
import { CallTimedPipeline, callTimedTransaction } from './call-timed-pipeline.js';

type TopologyTimedClusterOptions = NonNullable<ConstructorParameters<typeof Cluster<'legacy'>>[1]> & {
  /** Bounds CLUSTER SLOTS and the ready check, each on a connection opened for it. */
  topologyTimeoutMs: number;
};

type ReadyCheckCallback = (error?: Error | null, state?: string) => void;
type ReadyCallback = Parameters<Cluster['delayUntilReady']>[0];

/** The two ioredis Cluster internals this class re-times (private in ioredis' typings). */
interface ClusterInternals {
  getInfoFromNode(node: Redis | undefined, callback: (error?: Error) => void): void;
  readyCheck(callback: ReadyCheckCallback): void;
}

/**
 * A Redis Cluster client whose topology queries get their own timeout.
 *
 * ioredis learns the topology (CLUSTER SLOTS) and checks the cluster's health (CLUSTER INFO) over
 * connections it has just opened, timed by the per-command `commandTimeout` — which here is the hot
 * path's budget (50 ms) and must then cover the TCP connect as well. On a busy host (a replica starting
 * beside others, a traffic spike) nearly every such query times out, and a replica stays without Redis
 * for a minute or more although the cluster is healthy. Topology queries are rare (connect, reconnect,
 * MOVED, the periodic refresh), so they get `topologyTimeoutMs`; every other command keeps
 * `commandTimeout`.
 *
 * Until it has its slot table, an auto-pipelined command (and a pipeline) waits for the client to be
 * ready, which ioredis bounds by nothing but the topology queries (seconds, or for ever while the
 * nodes accept and answer nothing). Without the offline queue that wait is held to `commandTimeout`,
 * as any command is: Redis is never a reason for a request to hang, starting or not.
 *
 * A command whose node connection closed before its reply (a master killed, a silent connection
 * replaced after its socket timeout) is sent again by ioredis after its failover delay, to the node
 * serving its slot then, and one that waited for its node's connection to open is written once it
 * has. Without the offline queue, one whose caller has been answered meanwhile (`commandTimeout`) is
 * not, auto-pipelined or not: sent late it would run after its caller had decided without it (a limit
 * or a quota charged for a request Redis did not decide, twice when the lost one had run).
 *
 * And a command's `commandTimeout` counts from the call, not from when ioredis first writes it to a
 * node: one that finds its master's connection still opening (a master whose host is gone) waits for
 * ioredis' failover retry, which waits for a slot table refresh — seconds when that refresh asks a
 * node that does not answer.
 */
export class TopologyTimedCluster extends Cluster {
  readonly topologyTimeoutMs: number;
  private readonly seeds: ClusterNode[];
  /** Without the offline queue: each command's timeout, counted from its call. */
  private readonly callTimeoutMs: number | undefined;

  constructor(nodes: ClusterNode[], options: TopologyTimedClusterOptions) {
    super(nodes, Object.assign({}, options, { slotsRefreshTimeout: options.topologyTimeoutMs }));
    this.topologyTimeoutMs = options.topologyTimeoutMs;
    this.seeds = nodes;
    const internals = this as unknown as ClusterInternals;
    const getInfoFromNode = internals.getInfoFromNode.bind(this);
    internals.getInfoFromNode = (node, callback) =>
      getInfoFromNode(node && this.withTopologyTimeout(node), callback);
    internals.readyCheck = (callback) => this.checkClusterState(callback);
    if (!options.enableOfflineQueue) {
      this.callTimeoutMs = options.redisOptions?.commandTimeout;
      this.on('+node', (connection: Redis) => sendNoAnsweredCommand(connection));
    }
  }

  override sendCommand(
    command: Command,
    stream?: Parameters<Cluster['sendCommand']>[1],
    node?: unknown,
  ): unknown {
    if (this.callTimeoutMs !== undefined && stream === undefined) command.setTimeout(this.callTimeoutMs);
    return super.sendCommand(command, stream, node);
  }

  /** Auto-pipelines too: a pipeline fails within `commandTimeout` of its creation (call-timed-pipeline.ts). */
  override pipeline(commands?: unknown[][]): ChainableCommander {
    if (this.callTimeoutMs === undefined) return super.pipeline(commands);
    const pipeline = new CallTimedPipeline(this, this.callTimeoutMs);
    if (commands) pipeline.addBatch(commands);
    return pipeline as unknown as ChainableCommander;
  }

  /** A transaction too (MULTI … EXEC as one pipeline), unless sent as plain commands (`pipeline: false`). */
  override multi(options: { pipeline: false }): Promise<'OK'>;
  override multi(): ChainableCommander;
  override multi(options: { pipeline: true }): ChainableCommander;
  override multi(commands?: unknown[][]): ChainableCommander;
  override multi(
    commandsOrOptions?: unknown[][] | { pipeline: boolean },
  ): ChainableCommander | Promise<'OK'> {
    const commands = Array.isArray(commandsOrOptions) ? commandsOrOptions : undefined;
    const plain = !Array.isArray(commandsOrOptions) && commandsOrOptions?.pipeline === false;
    if (this.callTimeoutMs !== undefined && !plain)
      return callTimedTransaction(this, this.callTimeoutMs, commands);
    return super.multi(commandsOrOptions as never);
  }

  override delayUntilReady(callback: ReadyCallback): void {
    const bound = this.callTimeoutMs;
    if (bound === undefined) {
      super.delayUntilReady(callback);
      return;
    }
    let waiting = true;
    const settle: ReadyCallback = (error) => {
      if (!waiting) return;
      waiting = false;
      clearTimeout(timer);
      callback(error);
    };
    const timer = setTimeout(() => settle(new Error('Command timed out')), bound);
    super.delayUntilReady(settle);
  }

  override duplicate(
    overrideStartupNodes: ClusterNode[] = [],
    overrideOptions: ClusterOptions = {},
  ): Cluster {
    const redisOptions = { ...this.options.redisOptions, ...overrideOptions.redisOptions };
    const options = {
      ...this.options,
      ...overrideOptions,
      redisOptions,
      topologyTimeoutMs: this.topologyTimeoutMs,
    };
    const startupNodes = overrideStartupNodes.length > 0 ? overrideStartupNodes : this.seeds.slice();
    return new TopologyTimedCluster(startupNodes, options as TopologyTimedClusterOptions);
  }

  /** ioredis opens CLUSTER SLOTS' connection with `node.duplicate(...)`: that copy gets the longer timeout. */
  private withTopologyTimeout(node: Redis): Redis {
    const timed = Object.create(node) as Redis;
    timed.duplicate = (override) => node.duplicate({ ...override, commandTimeout: this.topologyTimeoutMs });
    return timed;
  }

  /** ioredis' ready check (refuse "ready" while cluster_state is fail), on a connection of its own. */
  private checkClusterState(callback: ReadyCheckCallback): void {
    const nodes = this.nodes('all');
    const node = nodes[Math.floor(Math.random() * nodes.length)];
    if (!node) {
      callback(new Error('no cluster node to check'));
      return;
    }
    const probe = node.duplicate({
      commandTimeout: this.topologyTimeoutMs,
      enableOfflineQueue: true,
      enableReadyCheck: false,
      retryStrategy: () => null,
      connectionName: `${node.options.connectionName ?? 'vantageedge'}(ready-check)`,
    });
    probe.on('error', () => {});
    probe.cluster('INFO').then(
      (info) => {
        probe.disconnect();
        const state = /cluster_state:(\w+)/.exec(String(info))?.[1];
        callback(null, state === 'fail' ? state : undefined);
      },
      (error: Error) => {
        probe.disconnect();
        callback(error);
      },
    );
  }
}

/**
 * `connection` (a node's) no longer writes a command whose promise has settled: the Cluster client
 * sends a command again on it after its first connection closed, and the connection writes what waited
 * for it to open, also once their callers gave up on them. A pipeline's commands (an auto-pipeline's:
 * the gateway's calls) are written together once each has been handed to the pipeline's writer, which
 * counts them: a settled one is handed nothing, so the others still leave, and no reply is expected
 * for it.
 */
function sendNoAnsweredCommand(connection: Redis): void {
  const send = connection.sendCommand;
  connection.sendCommand = function sendUnlessAnswered(this: Redis, command, stream) {
    if (command.isSettled !== true) return send.call(this, command, stream);
    if (stream === undefined) return command.promise;
    if (!isPipelineWriter(stream)) return send.call(this, command, stream);
    stream.write('');
    return command.promise;
  };
}

/** The writer a pipeline hands each of its commands to (ioredis' Pipeline#exec). */
function isPipelineWriter(stream: object): stream is { isPipeline: true; write(chunk: string): unknown } {
  return Reflect.get(stream, 'isPipeline') === true && typeof Reflect.get(stream, 'write') === 'function';
}
