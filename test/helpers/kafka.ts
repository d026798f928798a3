// A real, single-node Apache Kafka broker (KRaft, combined broker+controller) for tests,
// run from the plain Maven Central jars with the local `java`: no Docker, no download of
// the Kafka distribution tarball. A 3-node cluster built from the same pieces is in
// kafka-cluster.ts.
//
// Version: Kafka 4.4.0 (override with BETRACE_KAFKA_VERSION, e.g. 3.9.2). Kafka 4.x needs
// Java 17+ for the broker. The client (@platformatic/kafka) negotiates each API's version
// within the broker's range, and its consumers use the new consumer group protocol of
// KIP-848 (`groupProtocol: 'consumer'`), which 4.x serves with no broker setting; its
// session timeout and heartbeat interval are the broker's `group.consumer.*` properties
// (set below), not the client's.
//
// Jars come from deploy/kafka/pom.xml via `mvn dependency:copy-dependencies` into
// `<cache>/kafka-<version>/libs` (cache: see betraceCacheDir in tools.ts), once.
//
// Shared broker: test/helpers/kafka-global-setup.ts (for `node --test
// --test-global-setup=...`) starts one broker per test run and publishes its address in
// BETRACE_TEST_KAFKA_BROKERS, which test files (child processes) inherit; getTestKafka()
// returns it, or starts a private broker for the current process when there is none.
// Tests that stop/kill/restart a broker must use their own startKafka().
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Admin } from '@platformatic/kafka';
import { betraceCacheDir } from './tools.ts';

export const KAFKA_VERSION = process.env.BETRACE_KAFKA_VERSION ?? '4.4.0';

/** Environment variable carrying the shared test broker's `host:port` list (comma-separated). */
export const TEST_KAFKA_ENV = 'BETRACE_TEST_KAFKA_BROKERS';

const POM = fileURLToPath(new URL('../../deploy/kafka/pom.xml', import.meta.url));

export interface KafkaBroker {
  /** Bootstrap addresses, e.g. `['127.0.0.1:40123']`. Stable across stop()/start(). */
  readonly brokers: string[];
  /** Directory holding server.properties and the data (`data/`); removed by destroy(). */
  readonly dir: string;
  /** The broker's log file (stdout+stderr of the JVM). */
  readonly logFile: string;
  /** Per extra listener (StartKafkaOptions.listeners), its address. */
  readonly listeners: Readonly<Record<string, string>>;
  /** Graceful shutdown (SIGTERM, controlled shutdown); the data is kept. */
  stop(): Promise<void>;
  /** Starts again on the same ports and data directory; resolves once it serves requests. */
  start(): Promise<void>;
  /** SIGKILL, as in a crash; the data is kept (recovered on start()). */
  kill(): Promise<void>;
  /** stop() and delete the data directory. Idempotent. */
  destroy(): Promise<void>;
}

export interface StartKafkaOptions {
  /** Where to write the broker log (`kafka-<port>.log`, kept after destroy()). Default: inside the data dir. */
  logDir?: string;
  /** JVM max heap, default `512m`. */
  heap?: string;
  /** Let the broker create topics on first use; default false. */
  autoCreateTopics?: boolean;
  /** Extra JVM arguments (after the defaults, so they win). */
  jvmArgs?: string[];
  /** Extra/overriding server.properties entries. */
  properties?: Record<string, string | number | boolean>;
  /**
   * Listeners for clients besides PLAINTEXT (which brokers and the readiness probe keep
   * using), each on a port of its own: name → security protocol (SSL, SASL_SSL,
   * SASL_PLAINTEXT). Their settings go in `properties` (listener.name.<name>.…).
   */
  listeners?: Record<string, 'SSL' | 'SASL_SSL' | 'SASL_PLAINTEXT'>;
  /** Extra arguments of the storage format, e.g. `--add-scram` credentials. */
  formatArgs?: string[];
  /** How long to wait for the broker to serve requests, default 60 s. */
  startTimeoutMs?: number;
}

// ---------------------------------------------------------------------------------------
// Jars

let jarsPromise: Promise<string> | undefined;

/**
 * Directory holding the broker's jars (classpath `<dir>/*`), fetched from Maven Central
 * with deploy/kafka/pom.xml the first time. Cached across runs; a marker file records the
 * pom's hash, so editing the pom refetches.
 */
export function ensureKafkaJars(): Promise<string> {
  jarsPromise ??= fetchKafkaJars().catch((err: unknown) => {
    jarsPromise = undefined;
    throw err;
  });
  return jarsPromise;
}

async function fetchKafkaJars(): Promise<string> {
  const home = path.join(betraceCacheDir(), `kafka-${KAFKA_VERSION}`);
  const libs = path.join(home, 'libs');
  const marker = path.join(home, 'libs.complete');
  const pom = await readFile(POM);
  const stamp = createHash('sha256').update(pom).update(KAFKA_VERSION).digest('hex');
  const current = async (): Promise<boolean> =>
    existsSync(libs) && (await readFile(marker, 'utf8').catch(() => '')).trim() === stamp;
  if (await current()) return libs;

  requireCommand('mvn', ['-v'], 'Maven (mvn) is needed once to fetch the Kafka jars from Maven Central');
  requireJava();
  await mkdir(home, { recursive: true });
  // Download into a private directory, then rename into place: several test processes may
  // race here, and only complete directories must ever be visible as `libs`.
  const staging = await mkdtemp(path.join(home, 'libs.tmp-'));
  try {
    const args = [
      '-q', '-B', '-f', POM,
      'dependency:copy-dependencies',
      '-DincludeScope=runtime',
      `-Dkafka.version=${KAFKA_VERSION}`,
      `-DoutputDirectory=${staging}`,
    ];
    const res = await runCollect('mvn', args);
    if (res.code !== 0) {
      throw new Error(`ensureKafkaJars: \`mvn ${args.join(' ')}\` failed (exit ${res.code}):\n${res.output.slice(-4000)}`);
    }
    if (await current()) return libs; // another process won the race
    await rm(libs, { recursive: true, force: true });
    try {
      await rename(staging, libs);
    } catch (err) {
      if (!(await current()) && !existsSync(libs)) throw err;
    }
    await writeFile(marker, `${stamp}\n`);
    return libs;
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------
// Broker process

/**
 * server.properties entries shared by every test node (the single broker here and the
 * nodes of kafka-cluster.ts): short group and broker timeouts, small thread pools.
 */
export const TEST_NODE_PROPERTIES: Readonly<Record<string, string | number | boolean>> = {
  'group.initial.rebalance.delay.ms': 0,
  // Classic protocol: let tests use short consumer session timeouts.
  'group.min.session.timeout.ms': 1000,
  // Consumer group protocol (KIP-848): the broker, not the client, sets a member's
  // session timeout and heartbeat interval. The default session (45 s) would make every
  // test that kills a worker wait 45 s before its partitions move; 6 s with a heartbeat
  // every 500 ms notices a dead member within ~6 s and still tolerates a few missed
  // heartbeats on a busy 2-core machine. The minimums (the range a group's own
  // `consumer.session.timeout.ms` / `consumer.heartbeat.interval.ms` may take) are lowered
  // from their 45 s / 5 s defaults so a test can shorten them further for one group.
  'group.consumer.min.session.timeout.ms': 1000,
  'group.consumer.session.timeout.ms': 6000,
  'group.consumer.min.heartbeat.interval.ms': 100,
  'group.consumer.heartbeat.interval.ms': 500,
  // After a kill() the controller refuses the restarted broker's registration
  // (DUPLICATE_BROKER_REGISTRATION) until the old incarnation's session expires:
  // 9 s by default, which made every restart after a crash take ~13 s. In a cluster this
  // is also how soon the controller fences a dead broker and moves its leaderships.
  'broker.heartbeat.interval.ms': 500,
  'broker.session.timeout.ms': 3000,
  // Small and quiet: 2 cores, many processes.
  'num.network.threads': 2,
  'num.io.threads': 2,
  'background.threads': 2,
  'num.recovery.threads.per.data.dir': 1,
  'num.replica.fetchers': 1,
  'log.cleaner.threads': 1,
  'log.cleaner.dedupe.buffer.size': 4 * 1024 * 1024,
  'log.index.size.max.bytes': 1024 * 1024,
  'log.segment.bytes': 64 * 1024 * 1024,
  'delete.topic.enable': true,
};

/** Every broker child of this process, killed (and its temp dir removed) on process exit. */
const live = new Set<{ child: ChildProcess | undefined; dir: string }>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const entry of live) {
      try {
        entry.child?.kill('SIGKILL');
      } catch {
        /* already gone */
      }
      try {
        rmSync(entry.dir, { recursive: true, force: true, maxRetries: 2 });
      } catch {
        /* best effort */
      }
    }
  });
}

/** Starts a fresh single-node KRaft broker on free loopback ports, in a new temp dir. */
export async function startKafka(options: StartKafkaOptions = {}): Promise<KafkaBroker> {
  // A free port may be taken by someone else before the JVM binds it: retry on that.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startKafkaOnce(options);
    } catch (err) {
      if (attempt >= 3 || !(err instanceof PortInUseError)) throw err;
    }
  }
}

/** A node could not bind one of its ports (taken after freePorts() found it free): retry elsewhere. */
export class PortInUseError extends Error {}

async function startKafkaOnce(options: StartKafkaOptions): Promise<KafkaBroker> {
  const extra = Object.entries(options.listeners ?? {});
  const [port, controllerPort, ...extraPorts] = await freePorts(2 + extra.length);
  if (port === undefined || controllerPort === undefined) throw new Error('startKafka: no free ports');
  const listeners = Object.fromEntries(extra.map(([name], i) => [name, `127.0.0.1:${extraPorts[i]!}`]));
  const extraListeners = extra.map(([name]) => `,${name}://${listeners[name]!}`).join('');
  const extraProtocols = extra.map(([name, protocol]) => `,${name}:${protocol}`).join('');
  const address = `127.0.0.1:${port}`;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'betrace-kafka-'));
  try {
    const logFile = await kafkaLogFile(dir, options.logDir, `kafka-${port}.log`);
    const { jvm, propsFile } = await prepareKafkaNode(dir, {
      'process.roles': 'broker,controller',
      'node.id': 1,
      'controller.quorum.voters': `1@127.0.0.1:${controllerPort}`,
      listeners: `PLAINTEXT://${address},CONTROLLER://127.0.0.1:${controllerPort}${extraListeners}`,
      'advertised.listeners': `PLAINTEXT://${address}${extraListeners}`,
      'listener.security.protocol.map': `PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT${extraProtocols}`,
      'controller.listener.names': 'CONTROLLER',
      'inter.broker.listener.name': 'PLAINTEXT',
      'num.partitions': 1,
      'default.replication.factor': 1,
      'min.insync.replicas': 1,
      'auto.create.topics.enable': options.autoCreateTopics ?? false,
      'offsets.topic.replication.factor': 1,
      'offsets.topic.num.partitions': 1,
      'transaction.state.log.replication.factor': 1,
      'transaction.state.log.min.isr': 1,
      'transaction.state.log.num.partitions': 1,
      'share.coordinator.state.topic.replication.factor': 1,
      'share.coordinator.state.topic.min.isr': 1,
      'share.coordinator.state.topic.num.partitions': 1,
      ...TEST_NODE_PROPERTIES,
      ...options.properties,
    }, options);
    await formatKafkaStorage(jvm, propsFile, newKafkaClusterId(), options.formatArgs);
    const node = kafkaProcess({
      dir, jvm, propsFile, logFile, address, brokers: 1, startTimeoutMs: options.startTimeoutMs ?? 60_000,
    });
    await node.start().catch(async (err: unknown) => {
      await node.destroy();
      throw err;
    });
    return {
      brokers: [address],
      dir,
      logFile,
      listeners,
      stop: node.stop,
      kill: node.kill,
      start: node.start,
      destroy: node.destroy,
    };
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

/** Where a node's log goes: `<logDir>/<name>` when a log dir is given (kept), else inside its data dir. */
export async function kafkaLogFile(dir: string, logDir: string | undefined, name: string): Promise<string> {
  if (!logDir) return path.join(dir, 'broker.log');
  await mkdir(path.resolve(logDir), { recursive: true });
  return path.join(path.resolve(logDir), name);
}

/**
 * Writes `<dir>/server.properties` (`log.dirs` = `<dir>/data`, then `properties`) and the
 * log4j2 configuration, and returns the JVM arguments that run a node from the jars.
 */
export async function prepareKafkaNode(
  dir: string,
  properties: Record<string, string | number | boolean>,
  options: Pick<StartKafkaOptions, 'heap' | 'jvmArgs'> = {},
): Promise<{ jvm: string[]; propsFile: string }> {
  const libs = await ensureKafkaJars();
  requireJava();
  const propsFile = path.join(dir, 'server.properties');
  const log4jFile = path.join(dir, 'log4j2.properties');
  const props = { 'log.dirs': path.join(dir, 'data'), ...properties };
  await writeFile(propsFile, Object.entries(props).map(([k, v]) => `${k}=${String(v)}`).join('\n') + '\n');
  await writeFile(
    log4jFile,
    [
      'status = warn',
      'appender.out.type = Console',
      'appender.out.name = out',
      'appender.out.layout.type = PatternLayout',
      'appender.out.layout.pattern = [%d] %p %m (%c)%n',
      'rootLogger.level = INFO',
      'rootLogger.appenderRef.out.ref = out',
      // The config dumps are long and rarely useful.
      'logger.config.name = org.apache.kafka.common.config.AbstractConfig',
      'logger.config.level = WARN',
      '',
    ].join('\n'),
  );
  const jvm = [
    `-Xmx${options.heap ?? '512m'}`,
    '-Xms64m',
    '-XX:+UseSerialGC',
    // C1 only: ~0.7 s faster start and far less compile CPU on a 2-core machine; peak
    // throughput is lower (pass jvmArgs: ['-XX:TieredStopAtLevel=4'] for benchmarks).
    '-XX:TieredStopAtLevel=1',
    '-XX:+ExitOnOutOfMemoryError',
    '-Djava.awt.headless=true',
    `-Dlog4j2.configurationFile=${log4jFile}`,
    '-Dlog4j2.disable.jmx=true',
    ...(options.jvmArgs ?? []),
    '-cp',
    `${libs}${path.sep}*`,
  ];
  return { jvm, propsFile };
}

/**
 * A random cluster id. Like Kafka's Uuid.randomUuid(), never starting with '-': the
 * storage tool's argument parser would take `-t -xyz...` for an option (this failed one
 * start in ~64).
 */
export function newKafkaClusterId(): string {
  let clusterId: string;
  do clusterId = randomBytes(16).toString('base64url');
  while (clusterId.startsWith('-'));
  return clusterId;
}

/**
 * Formats a node's storage for `clusterId`, with a static quorum (the node's
 * controller.quorum.voters and --cluster-id, not the dynamic --standalone of 3.9+).
 */
export async function formatKafkaStorage(jvm: string[], propsFile: string, clusterId: string, formatArgs: string[] = []): Promise<void> {
  const fmt = await runCollect('java', [...jvm, 'kafka.tools.StorageTool', 'format', '--cluster-id', clusterId, '--config', propsFile, ...formatArgs]);
  if (fmt.code !== 0) {
    throw new Error(`Kafka: formatting the storage of ${propsFile} failed (exit ${fmt.code}):\n${fmt.output.slice(-4000)}`);
  }
}

export interface KafkaProcessSpec {
  /** The node's directory (config and data), removed by destroy(), by the exit hook and by the watchdog. */
  dir: string;
  jvm: string[];
  propsFile: string;
  logFile: string;
  /** The PLAINTEXT address the readiness probe asks. */
  address: string;
  /** start() resolves once this node's metadata lists this many live brokers. */
  brokers: number;
  startTimeoutMs: number;
}

/** One node's JVM: started, stopped, killed and restarted on the same config and data. */
export interface KafkaProcess {
  /** Spawns the JVM and resolves once it is ready (see KafkaProcessSpec.brokers); PortInUseError if it could not bind. */
  readonly start: () => Promise<void>;
  /** SIGTERM (controlled shutdown), SIGKILL after 30 s. */
  readonly stop: () => Promise<void>;
  /** SIGKILL, as in a crash. */
  readonly kill: () => Promise<void>;
  /** SIGTERM (SIGKILL after 10 s) and delete the directory. Idempotent; start() fails afterwards. */
  readonly destroy: () => Promise<void>;
  readonly running: boolean;
}

/** The process side of a node whose directory is prepared and formatted; not started yet. */
export function kafkaProcess(spec: KafkaProcessSpec): KafkaProcess {
  const { dir, jvm, propsFile, logFile, address } = spec;
  const entry: { child: ChildProcess | undefined; dir: string } = { child: undefined, dir };
  installExitHook();
  live.add(entry);
  let watchdog: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let destroyed = false;

  // The child is unref()'d (a forgotten broker must not keep the process alive), so the
  // ref'd escalation timer is also what keeps the event loop alive until the exit event.
  const signal = async (sig: NodeJS.Signals, graceMs: number): Promise<void> => {
    const child = entry.child;
    if (!child) return;
    child.kill(sig);
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  };

  const start = async (): Promise<void> => {
    if (destroyed) throw new Error('Kafka node start(): destroyed');
    if (entry.child) throw new Error('Kafka node start(): already running');
    const fd = openSync(logFile, 'a');
    let child: ChildProcess;
    try {
      child = spawn('java', [...jvm, 'kafka.Kafka', propsFile], { cwd: dir, stdio: ['ignore', fd, fd] });
    } finally {
      closeSync(fd);
    }
    entry.child = child;
    child.unref();
    exited = new Promise((resolve) => {
      child.once('exit', () => {
        if (entry.child === child) entry.child = undefined;
        watchdog?.kill('SIGKILL');
        watchdog = undefined;
        resolve();
      });
    });
    watchdog = startWatchdog(child.pid, dir);
    try {
      await waitReady(address, child, spec.startTimeoutMs, logFile, spec.brokers);
    } catch (err) {
      await signal('SIGKILL', 5_000);
      if (/Address already in use|BindException/.test(tail(logFile, 200))) {
        throw new PortInUseError(err instanceof Error ? err.message : String(err));
      }
      throw err;
    }
  };

  return {
    start,
    stop: () => signal('SIGTERM', 30_000),
    kill: () => signal('SIGKILL', 5_000),
    destroy: async () => {
      if (destroyed) return;
      destroyed = true;
      await signal('SIGTERM', 10_000);
      live.delete(entry);
      await rm(dir, { recursive: true, force: true, maxRetries: 3 });
    },
    get running() {
      return entry.child !== undefined;
    },
  };
}

/**
 * A tiny `sh` that holds a pipe from this process: when this process dies in any way
 * (even SIGKILL, where no 'exit' handler runs) the pipe reaches EOF and the shell kills
 * the broker and removes its directory. Killed itself when the broker exits normally.
 */
function startWatchdog(pid: number | undefined, dir: string): ChildProcess | undefined {
  if (pid === undefined || process.platform === 'win32') return undefined;
  const script = 'read _ignored; kill -9 "$1" 2>/dev/null; sleep 1; rm -rf -- "$2"';
  const dog = spawn('sh', ['-c', script, 'betrace-kafka-watchdog', String(pid), dir], {
    stdio: ['pipe', 'ignore', 'ignore'],
  });
  dog.on('error', () => undefined);
  dog.unref();
  const stdin = dog.stdin as (NodeJS.WritableStream & { unref?: () => void }) | null;
  stdin?.on('error', () => undefined);
  stdin?.unref?.();
  return dog;
}

/** A metadata-capable Admin client for test helpers: no retries of its own, short timeouts. */
export function probeAdmin(bootstrap: readonly string[], clientId = 'betrace-test-kafka-probe'): Admin {
  return new Admin({
    clientId,
    bootstrapBrokers: [...bootstrap],
    retries: 0,
    connectTimeout: 1000,
    requestTimeout: 5000,
  });
}

async function waitReady(address: string, child: ChildProcess, timeoutMs: number, logFile: string, brokers: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exitInfo: string | undefined;
  const onExit = (code: number | null, sig: NodeJS.Signals | null): void => {
    exitInfo = `exited with ${sig ?? `code ${code}`}`;
  };
  child.once('exit', onExit);
  let lastError: unknown;
  try {
    while (Date.now() < deadline) {
      if (exitInfo) break;
      // A fresh client each round: metadata() must come from this node, not from a cache
      // or a connection opened before it was ready.
      const admin = probeAdmin([address]);
      try {
        const metadata = await admin.metadata({ topics: [], forceUpdate: true });
        // A broker lists only live (registered, unfenced) brokers, itself included once it is.
        if (metadata.brokers.size >= brokers && metadata.controllerId >= 0) return;
        lastError = new Error(`metadata: brokers [${[...metadata.brokers.keys()].join(', ')}], controller ${metadata.controllerId}`);
      } catch (err) {
        lastError = err;
      } finally {
        await admin.close().catch(() => undefined);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  } finally {
    child.off('exit', onExit);
  }
  const why = exitInfo
    ? `the broker ${exitInfo}`
    : `its metadata did not list ${brokers} live broker(s) within ${timeoutMs} ms`;
  const last = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
  throw new Error(`Kafka ${KAFKA_VERSION} on ${address} failed to start: ${why}${last}.\n` +
    `--- last lines of ${logFile} ---\n${tail(logFile, 40)}`);
}

// ---------------------------------------------------------------------------------------
// Shared broker for a test run

let privateBroker: Promise<KafkaBroker> | undefined;

/**
 * Bootstrap addresses of the broker shared by the test run (BETRACE_TEST_KAFKA_BROKERS,
 * set by kafka-global-setup.ts or by hand for an external broker), or else of a private
 * broker started once for this process and killed when it exits. Do not stop or restart
 * this broker; use startKafka() for that. Use unique topic and group names (uniqueName).
 */
export async function getTestKafka(): Promise<{ brokers: string[]; shared: boolean }> {
  const shared = process.env[TEST_KAFKA_ENV]?.split(',').map((s) => s.trim()).filter(Boolean);
  if (shared && shared.length > 0) return { brokers: shared, shared: true };
  privateBroker ??= startKafka().catch((err: unknown) => {
    privateBroker = undefined;
    throw err;
  });
  const broker = await privateBroker;
  return { brokers: broker.brokers, shared: false };
}

/** `prefix-<random>`: topic/group names that do not collide on a shared broker. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
}

/** The `transport.kafka` config block of a test: the brokers, topics and groups named after `prefix`, a short session timeout. */
export function kafkaTestConfig(brokers: readonly string[], prefix: string): Record<string, unknown> {
  return {
    brokers,
    spans_topic: `${prefix}.spans`,
    rules_topic: `${prefix}.rules`,
    violations_topic: `${prefix}.violations`, index_topic: `${prefix}.index`,
    worker_group: `${prefix}-w`,
    forwarder_group: `${prefix}-f`,
    session_timeout: '6s',
  };
}

// ---------------------------------------------------------------------------------------
// Utilities

/** `n` distinct ports free on 127.0.0.1 right now. */
export async function freePorts(n: number): Promise<number[]> {
  // Hold all servers open together so the ports differ.
  const servers: net.Server[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const srv = net.createServer();
      servers.push(srv);
      await new Promise<void>((resolve, reject) => {
        srv.once('error', reject);
        srv.listen(0, '127.0.0.1', () => resolve());
      });
    }
    return servers.map((s) => (s.address() as net.AddressInfo).port);
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
}

/** The last `lines` lines of a log file, for error messages. */
export function tail(file: string, lines: number): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines - 1).join('\n');
  } catch {
    return '(no log)';
  }
}

function requireCommand(cmd: string, args: string[], why: string): string {
  const res = spawnSync(cmd, args, { encoding: 'utf8' });
  if (res.error) {
    const code = (res.error as NodeJS.ErrnoException).code;
    throw new Error(
      code === 'ENOENT'
        ? `The test Kafka broker needs \`${cmd}\`, which is not on PATH. ${why}.`
        : `Running \`${cmd} ${args.join(' ')}\` failed: ${res.error.message}`,
      { cause: res.error },
    );
  }
  return `${res.stdout}${res.stderr}`;
}

let javaChecked = false;

function requireJava(): void {
  if (javaChecked) return;
  const out = requireCommand('java', ['-version'], 'Install a Java 17+ runtime (e.g. apt-get install openjdk-17-jre-headless)');
  const m = /version "(\d+)(?:\.(\d+))?/.exec(out);
  const major = m ? (m[1] === '1' ? Number(m[2]) : Number(m[1])) : NaN;
  const needed = Number(KAFKA_VERSION.split('.')[0]) >= 4 ? 17 : 11;
  if (!(major >= needed)) {
    throw new Error(`The test Kafka broker (Kafka ${KAFKA_VERSION}) needs Java ${needed}+, but \`java -version\` says:\n${out}`);
  }
  javaChecked = true;
}

function runCollect(cmd: string, args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const collect = (chunk: Buffer): void => {
      output += chunk.toString('utf8');
      if (output.length > 64_000) output = output.slice(-32_000);
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, output }));
  });
}
