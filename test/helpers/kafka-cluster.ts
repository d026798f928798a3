// A real 3-node Apache Kafka cluster (KRaft) for tests that lose a broker: every node is
// broker and controller, the three form a static 3-voter quorum (controller.quorum.voters),
// all formatted with one cluster id, run from the same Maven Central jars as the single
// test broker (kafka.ts), on free loopback ports.
//
// Durability as in production: replication factor 3 and min.insync.replicas 2 for every
// topic, the internal ones included, so with acks=all a write survives the loss of any one
// node and producing goes on with two. The timeouts that decide how fast a lost node is
// replaced are stated in CLUSTER_PROPERTIES below; with them, after a `kill -9` of one
// node its partitions have new leaders within a few seconds (the node's broker session
// expires, the controller fences it, drops it from every ISR and elects leaders from
// what remains), and the killed node, restarted, catches up and rejoins the ISRs.
//
// Use it for its own test only (it is never shared): three JVMs on a 2-core machine.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { FindCoordinatorKeyTypes } from '@platformatic/kafka';
import type { ClusterPartitionMetadata } from '@platformatic/kafka';
import {
  formatKafkaStorage,
  freePorts,
  kafkaLogFile,
  kafkaProcess,
  newKafkaClusterId,
  PortInUseError,
  prepareKafkaNode,
  probeAdmin,
  TEST_NODE_PROPERTIES,
} from './kafka.ts';
import type { KafkaProcess } from './kafka.ts';

/** Number of nodes (brokers and voters) of the cluster. */
export const CLUSTER_SIZE = 3;

/**
 * server.properties entries of every cluster node, after TEST_NODE_PROPERTIES (whose
 * `broker.session.timeout.ms` 3000 / `broker.heartbeat.interval.ms` 500 and KIP-848 group
 * timeouts, 6 s session / 500 ms heartbeat, apply here too).
 */
export const CLUSTER_PROPERTIES: Readonly<Record<string, string | number | boolean>> = {
  'num.partitions': 1,
  'default.replication.factor': 3,
  'min.insync.replicas': 2,
  'auto.create.topics.enable': false,
  // The consumer offsets topic has no min-ISR setting of its own: its commits (acks=all)
  // follow min.insync.replicas (2) above.
  'offsets.topic.replication.factor': 3,
  'offsets.topic.num.partitions': 1,
  'transaction.state.log.replication.factor': 3,
  'transaction.state.log.min.isr': 2,
  'transaction.state.log.num.partitions': 1,
  'share.coordinator.state.topic.replication.factor': 3,
  'share.coordinator.state.topic.min.isr': 2,
  'share.coordinator.state.topic.num.partitions': 1,
  // Only an in-sync replica may lead: an acknowledged write is never lost to an election.
  'unclean.leader.election.enable': false,
  // A follower that stops fetching (alive but stalled) leaves the ISR after 5 s instead of
  // 30 s, so acks=all writes to its partitions wait at most that long. A killed node needs
  // no lag timeout: fenced after broker.session.timeout.ms (3 s, TEST_NODE_PROPERTIES),
  // it leaves every ISR at once. Not lower: a follower starved of CPU for a moment on a
  // busy 2-core machine must not flap in and out.
  'replica.lag.time.max.ms': 5000,
  // Leaders stay where the failover put them (no preferred-leader election moving them
  // back to a restarted node mid-test, 5 min after it rejoined).
  'auto.leader.rebalance.enable': false,
  // Quorum timeouts at Kafka's defaults, stated: when the killed node was the active
  // controller, the others notice after controller.quorum.fetch.timeout.ms (2 s) and elect
  // a new one within controller.quorum.election.timeout.ms (1 s, randomised up to 2x),
  // which then fences the dead broker after its broker session (3 s): ~5-7 s in all.
  'controller.quorum.fetch.timeout.ms': 2000,
  'controller.quorum.election.timeout.ms': 1000,
  'controller.quorum.election.backoff.max.ms': 1000,
};

export interface StartKafkaClusterOptions {
  /** Where to write the node logs (`kafka-node<id>-<port>.log`, kept after destroy()). Default: inside each node's dir. */
  logDir?: string;
  /** JVM max heap of each node, default `384m`. */
  heap?: string;
  /** Extra JVM arguments of every node. */
  jvmArgs?: string[];
  /** Extra/overriding server.properties entries of every node. */
  properties?: Record<string, string | number | boolean>;
  /** How long to wait for the cluster (and each restarted node) to serve, default 120 s. */
  startTimeoutMs?: number;
}

export interface KafkaNode {
  /** node.id (1..3). */
  readonly id: number;
  /** Its PLAINTEXT address, `127.0.0.1:<port>`; stable across stop()/start(). */
  readonly address: string;
  /** Its log file (stdout+stderr of the JVM). */
  readonly logFile: string;
  /** Whether its JVM is running. */
  readonly running: boolean;
  /** SIGKILL, as in a crash; the data is kept. */
  readonly kill: () => Promise<void>;
  /** Graceful shutdown (SIGTERM, controlled shutdown: leaderships move first); the data is kept. */
  readonly stop: () => Promise<void>;
  /** Starts again on the same ports and data; resolves once the node lists every node as a live broker (it registered again). */
  readonly start: () => Promise<void>;
}

export interface KafkaCluster {
  /** Bootstrap addresses of all nodes. */
  readonly brokers: string[];
  readonly nodes: readonly KafkaNode[];
  /** The node with this node.id. */
  node(id: number): KafkaNode;
  /** Leader, replicas and ISR of each partition of `topic` (index = partition), fresh from a running node. */
  partitions(topic: string): Promise<ClusterPartitionMetadata[]>;
  /** partition → leader's node id (-1 while it has none). */
  leaders(topic: string): Promise<Map<number, number>>;
  /** The running node leading the most partitions of `topic` (the lowest id on a tie). */
  nodeLeadingMost(topic: string): Promise<KafkaNode>;
  /** Kills every node and deletes their data. Idempotent. */
  destroy(): Promise<void>;
}

/** Starts a fresh 3-node KRaft cluster; resolves once every node lists all three brokers and the offsets topic exists. */
export async function startKafkaCluster(options: StartKafkaClusterOptions = {}): Promise<KafkaCluster> {
  // A free port may be taken by someone else before a JVM binds it: retry on that.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startClusterOnce(options);
    } catch (err) {
      if (attempt >= 3 || !(err instanceof PortInUseError)) throw err;
    }
  }
}

async function startClusterOnce(options: StartKafkaClusterOptions): Promise<KafkaCluster> {
  const ports = await freePorts(2 * CLUSTER_SIZE);
  const ids = Array.from({ length: CLUSTER_SIZE }, (_, i) => i + 1);
  const plain = (id: number): number => ports[2 * (id - 1)]!;
  const controller = (id: number): number => ports[2 * (id - 1) + 1]!;
  const voters = ids.map((id) => `${id}@127.0.0.1:${controller(id)}`).join(',');
  const clusterId = newKafkaClusterId();
  const startTimeoutMs = options.startTimeoutMs ?? 120_000;

  const dirs: string[] = [];
  const processes: KafkaProcess[] = [];
  const cleanUp = async (): Promise<void> => {
    await Promise.all(processes.map((p) => p.kill()));
    await Promise.all(processes.map((p) => p.destroy()));
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  };
  try {
    const nodes = await Promise.all(ids.map(async (id) => {
      const dir = await mkdtemp(path.join(os.tmpdir(), `betrace-kafka-node${id}-`));
      dirs.push(dir);
      const address = `127.0.0.1:${plain(id)}`;
      const logFile = await kafkaLogFile(dir, options.logDir, `kafka-node${id}-${plain(id)}.log`);
      const { jvm, propsFile } = await prepareKafkaNode(dir, {
        'process.roles': 'broker,controller',
        'node.id': id,
        'controller.quorum.voters': voters,
        listeners: `PLAINTEXT://${address},CONTROLLER://127.0.0.1:${controller(id)}`,
        'advertised.listeners': `PLAINTEXT://${address}`,
        'listener.security.protocol.map': 'PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
        'controller.listener.names': 'CONTROLLER',
        'inter.broker.listener.name': 'PLAINTEXT',
        ...TEST_NODE_PROPERTIES,
        ...CLUSTER_PROPERTIES,
        ...options.properties,
      }, { heap: options.heap ?? '384m', ...(options.jvmArgs ? { jvmArgs: options.jvmArgs } : {}) });
      await formatKafkaStorage(jvm, propsFile, clusterId);
      const proc = kafkaProcess({ dir, jvm, propsFile, logFile, address, brokers: CLUSTER_SIZE, startTimeoutMs });
      processes.push(proc);
      const node: KafkaNode = {
        id,
        address,
        logFile,
        get running() {
          return proc.running;
        },
        kill: proc.kill,
        stop: proc.stop,
        start: proc.start,
      };
      return node;
    }));
    // In parallel: a node is ready only once a quorum elected a controller and all three
    // registered, so none can be waited for alone.
    await Promise.all(nodes.map((n) => n.start()));
    const cluster = clusterApi(nodes, cleanUp);
    await createOffsetsTopic(cluster, startTimeoutMs);
    return cluster;
  } catch (err) {
    await cleanUp();
    throw err;
  }
}

function clusterApi(nodes: KafkaNode[], cleanUp: () => Promise<void>): KafkaCluster {
  let destroyed = false;
  const partitions = async (topic: string): Promise<ClusterPartitionMetadata[]> => {
    const running = nodes.filter((n) => n.running).map((n) => n.address);
    if (running.length === 0) throw new Error('KafkaCluster: no node is running');
    const admin = probeAdmin(running);
    try {
      const metadata = await admin.metadata({ topics: [topic], forceUpdate: true });
      const found = metadata.topics.get(topic);
      if (!found) throw new Error(`KafkaCluster: no topic ${topic}`);
      return found.partitions;
    } finally {
      await admin.close().catch(() => undefined);
    }
  };
  const leaders = async (topic: string): Promise<Map<number, number>> =>
    new Map((await partitions(topic)).map((p, i) => [i, p.leader]));
  return {
    brokers: nodes.map((n) => n.address),
    nodes,
    node: (id) => {
      const node = nodes.find((n) => n.id === id);
      if (!node) throw new Error(`KafkaCluster: no node ${id} (nodes are ${nodes.map((n) => n.id).join(', ')})`);
      return node;
    },
    partitions,
    leaders,
    nodeLeadingMost: async (topic) => {
      const counts = new Map<number, number>();
      for (const leader of (await leaders(topic)).values()) counts.set(leader, (counts.get(leader) ?? 0) + 1);
      const candidates = nodes.filter((n) => n.running && (counts.get(n.id) ?? 0) > 0);
      const best = candidates.sort((a, b) => (counts.get(b.id) ?? 0) - (counts.get(a.id) ?? 0) || a.id - b.id)[0];
      if (!best) throw new Error(`KafkaCluster: no running node leads a partition of ${topic}`);
      return best;
    },
    destroy: async () => {
      if (destroyed) return;
      destroyed = true;
      // No graceful shutdown: the data goes anyway, and nodes stopping together would
      // each wait for a controller that is stopping too.
      await cleanUp();
    },
  };
}

/**
 * Creates the consumer offsets topic now, while all three nodes run: the broker creates it
 * on the first FindCoordinator, and with replication factor 3 it refuses to while a node
 * is down, so a group first used after a kill would never find a coordinator.
 */
async function createOffsetsTopic(cluster: KafkaCluster, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const admin = probeAdmin(cluster.brokers);
  try {
    for (;;) {
      try {
        await admin.findCoordinator({ keyType: FindCoordinatorKeyTypes.GROUP, keys: ['betrace-test-cluster-warmup'] });
        return;
      } catch (err) {
        if (Date.now() > deadline) {
          throw new Error(`startKafkaCluster: no group coordinator within ${timeoutMs} ms`, { cause: err });
        }
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  } finally {
    await admin.close().catch(() => undefined);
  }
}
