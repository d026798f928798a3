/**
 * The Helm chart lints and renders with its default values and every ci/*.yaml, and what
 * it renders runs betrace as the code expects: non-root, read-only root filesystem, probes
 * on /health and /ready, the code's default ports, a config betrace itself accepts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../src/config/index.ts';
import { VALUES_SETS, at, helmLint, helmTemplate, ofKind, parseChartConfig, renderChart, type K8sObject } from './helm.ts';

const defaults = parseConfig('{}', { env: {} });
const PORTS = { 'otlp-grpc': defaults.receiver.grpc.port, 'otlp-http': defaults.receiver.http.port, admin: defaults.api.port };

 
type Any = any;

function podSpecs(objects: readonly K8sObject[]): Array<{ name: string; spec: Any }> {
  return ofKind(objects, 'Deployment').map((d) => ({ name: d.metadata.name, spec: d.spec.template.spec }));
}

function mountAt(container: Any, spec: Any, path: string): { readOnly: boolean; volume: Any } | undefined {
  const mounts = (container.volumeMounts ?? []) as Any[];
  const best = mounts
    .filter((m) => path === m.mountPath || path.startsWith(`${m.mountPath}/`))
    .sort((a, b) => String(b.mountPath).length - String(a.mountPath).length)[0];
  if (!best) return undefined;
  return { readOnly: best.readOnly === true, volume: (spec.volumes as Any[]).find((v) => v.name === best.name) };
}

describe('helm chart', () => {
  for (const { name, options } of VALUES_SETS) {
    describe(name, () => {
      it('passes helm lint --strict', async () => {
        const result = await helmLint(options);
        assert.equal(result.code, 0, result.stdout + result.stderr);
      });

      it('runs every container as non-root on a read-only root filesystem, capabilities dropped, seccomp RuntimeDefault', async () => {
        const pods = podSpecs(await renderChart(options));
        assert.ok(pods.length > 0);
        for (const { name: pod, spec } of pods) {
          for (const c of [...(spec.initContainers ?? []), ...spec.containers] as Any[]) {
            const sc = { ...spec.securityContext, ...c.securityContext };
            const where = `${pod}/${c.name}`;
            assert.equal(sc.runAsNonRoot, true, `${where} runAsNonRoot`);
            assert.ok(typeof sc.runAsUser === 'number' && sc.runAsUser > 0, `${where} runAsUser > 0`);
            assert.equal(c.securityContext?.readOnlyRootFilesystem, true, `${where} readOnlyRootFilesystem`);
            assert.equal(c.securityContext?.allowPrivilegeEscalation, false, `${where} allowPrivilegeEscalation`);
            assert.deepEqual(c.securityContext?.capabilities?.drop, ['ALL'], `${where} drops ALL capabilities`);
            assert.equal(sc.seccompProfile?.type, 'RuntimeDefault', `${where} seccomp`);
            assert.ok(c.resources?.requests?.cpu && c.resources?.requests?.memory, `${where} resource requests`);
            assert.ok(c.resources?.limits?.memory, `${where} memory limit`);
            // The only writable places: data_dir and /tmp.
            assert.equal(mountAt(c, spec, '/tmp')?.readOnly, false, `${where} writable /tmp`);
            assert.ok(mountAt(c, spec, '/tmp')?.volume?.emptyDir, `${where} /tmp is an emptyDir`);
          }
        }
      });

      it('probes liveness on /health and readiness on /ready of the admin port', async () => {
        for (const { name: pod, spec } of podSpecs(await renderChart(options))) {
          for (const c of spec.containers as Any[]) {
            assert.equal(c.livenessProbe?.httpGet?.path, '/health', `${pod} liveness`);
            assert.equal(c.readinessProbe?.httpGet?.path, '/ready', `${pod} readiness`);
            for (const probe of [c.livenessProbe, c.readinessProbe, c.startupProbe].filter((x): x is Any => Boolean(x))) {
              assert.equal(probe.httpGet.port, 'admin', `${pod} probes the admin port`);
            }
          }
        }
      });

      it("listens on the code's default ports (receiver.grpc, receiver.http, api) and the Services reach them", async () => {
        const objects = await renderChart(options);
        const named = new Map<string, number>();
        for (const { name: pod, spec } of podSpecs(objects)) {
          for (const c of spec.containers as Any[]) {
            for (const p of c.ports as Any[]) {
              assert.ok(p.name in PORTS, `${pod}: unexpected port ${p.name}`);
              assert.equal(p.containerPort, PORTS[p.name as keyof typeof PORTS], `${pod} ${p.name}`);
              named.set(p.name as string, p.containerPort as number);
            }
            assert.equal(named.get('admin'), defaults.api.port, `${pod} exposes the admin port`);
          }
        }
        assert.deepEqual([...named.keys()].sort(), ['admin', 'otlp-grpc', 'otlp-http']);
        for (const svc of ofKind(objects, 'Service')) {
          for (const p of svc.spec.ports as Any[]) assert.ok(named.has(p.targetPort as string), `${svc.metadata.name} targets ${p.targetPort}`);
        }
        const receiver = ofKind(objects, 'Service').find((s) => s.metadata.name.endsWith('-receiver'));
        assert.deepEqual((receiver?.spec.ports as Any[]).map((p): number => p.port as number).sort(), [defaults.receiver.grpc.port, defaults.receiver.http.port].sort());
      });

      it('renders a config betrace accepts, binding all interfaces, with state, rules and token on mounted volumes', async () => {
        const objects = await renderChart(options);
        const cm = ofKind(objects, 'ConfigMap').find((c) => c.metadata.name.endsWith('-config'));
        assert.ok(cm, 'config ConfigMap');
        // The environment the pods give betrace, Secret values stood in for.
        const env: NodeJS.ProcessEnv = {};
        for (const { spec } of podSpecs(objects)) for (const e of (spec.containers[0].env ?? []) as Any[]) env[e.name as string] = (e.value as string | undefined) ?? 'stand-in';
        const { config, raw } = parseChartConfig(cm.data['betrace.yaml'] as string, env);
        assert.equal(config.receiver.grpc.host, '0.0.0.0');
        assert.equal(config.receiver.http.host, '0.0.0.0');
        assert.equal(config.api.host, '0.0.0.0');
        assert.deepEqual(
          [config.receiver.grpc.port, config.receiver.http.port, config.api.port],
          [defaults.receiver.grpc.port, defaults.receiver.http.port, defaults.api.port],
        );
        assert.equal(config.api.token, 'stand-in-token', 'the token comes from api.token_file');
        const tokenFile = at(raw, 'api.token_file') as string;
        for (const { name: pod, spec } of podSpecs(objects)) {
          const c = spec.containers[0];
          const args = c.args as string[];
          const configPath = args[args.indexOf('--config') + 1]!;
          assert.ok(mountAt(c, spec, configPath)?.volume?.configMap?.name === cm.metadata.name, `${pod} mounts the config at ${configPath}`);
          const data = mountAt(c, spec, config.dataDir);
          assert.ok(data && !data.readOnly && (data.volume.emptyDir || data.volume.persistentVolumeClaim), `${pod} data_dir ${config.dataDir} writable`);
          assert.ok(mountAt(c, spec, tokenFile)?.volume?.secret, `${pod} token file from a Secret`);
          for (const pattern of config.rules.paths) {
            const rules = mountAt(c, spec, pattern);
            assert.ok(rules?.volume?.configMap, `${pod} rules ${pattern} from a ConfigMap`);
            assert.ok(!(c.volumeMounts as Any[]).some((m) => m.name === rules.volume.name && m.subPath), `${pod} rules mounted as a directory (no subPath), so updates reach the pod`);
          }
        }
      });
    });
  }

  it('all-in-one: one Deployment of one replica running every role on the embedded transport', async () => {
    const objects = await renderChart({ files: ['ci/all-in-one.yaml'] });
    const deployments = ofKind(objects, 'Deployment');
    assert.equal(deployments.length, 1);
    const d = deployments[0]!;
    assert.equal(d.spec.replicas, 1);
    assert.match((d.spec.template.spec.containers[0].args as string[]).join(' '), /--roles receiver,worker,forwarder,api/);
    const cm = ofKind(objects, 'ConfigMap').find((c) => c.metadata.name.endsWith('-config'))!;
    assert.equal(parseChartConfig(cm.data['betrace.yaml'] as string).config.transport.kind, 'embedded');
    assert.equal(ofKind(objects, 'PersistentVolumeClaim').length, 1);
    assert.equal(d.spec.strategy?.type, 'Recreate', 'a ReadWriteOnce volume: the old pod goes before the new one starts');
    const rules = ofKind(objects, 'ConfigMap').find((c) => c.metadata.name.endsWith('-rules'))!;
    assert.deepEqual(Object.keys(rules.data as object).sort(), ['audit.yaml', 'payments.yaml']);
  });

  it('all-in-one: the local history on a persistent volume by default, its bound under the volume size', async () => {
    const objects = await renderChart({ set: { 'auth.token': 't' } });
    const [d] = ofKind(objects, 'Deployment');
    const cm = ofKind(objects, 'ConfigMap').find((c) => c.metadata.name.endsWith('-config'))!;
    const { config } = parseChartConfig(cm.data['betrace.yaml'] as string);
    assert.equal(config.transport.kind, 'embedded');
    assert.equal(config.transport.history.dir, `${config.dataDir}/history`);
    assert.equal(config.transport.history.maxAgeMs, 30 * 86_400_000, '30 days: a rule of day 30 replays days 1-29');
    const spec = d!.spec.template.spec;
    const volume = mountAt(spec.containers[0], spec, config.transport.history.dir)?.volume;
    const [claim] = ofKind(objects, 'PersistentVolumeClaim');
    assert.equal(volume?.persistentVolumeClaim?.claimName, claim!.metadata.name, 'the history directory is on the claim');
    const gib = (s: string) => Number(/^(\d+)Gi/.exec(s)![1]) * 2 ** 30;
    assert.ok(config.transport.history.maxBytes < gib(claim!.spec.resources.requests.storage as string), 'the history bound fits the claim');

    const ephemeral = await renderChart({ set: { 'auth.token': 't', 'allInOne.persistence.enabled': 'false' } });
    assert.equal(ofKind(ephemeral, 'PersistentVolumeClaim').length, 0);
    const eSpec = ofKind(ephemeral, 'Deployment')[0]!.spec.template.spec;
    const data = mountAt(eSpec.containers[0], eSpec, config.transport.history.dir)?.volume;
    assert.equal(data?.emptyDir?.sizeLimit, '10Gi', 'without a claim, an emptyDir the size the claim would have had');
  });

  it('split roles: a Deployment per role on Kafka with TLS and SASL, worker HPA, a PodDisruptionBudget each', async () => {
    const objects = await renderChart({ files: ['ci/split-kafka-tls-sasl.yaml'] });
    const roles = new Map(
      ofKind(objects, 'Deployment').map((d) => {
        const args = d.spec.template.spec.containers[0].args as string[];
        return [d.metadata.labels?.['app.kubernetes.io/component'], args[args.indexOf('--roles') + 1]] as const;
      }),
    );
    assert.deepEqual(Object.fromEntries(roles), { receiver: 'receiver', worker: 'worker', forwarder: 'forwarder', api: 'api' });
    const worker = ofKind(objects, 'Deployment').find((d) => d.metadata.name.endsWith('-worker'))!;
    assert.equal(worker.spec.replicas, undefined, 'replicas left to the HPA');
    const hpa = ofKind(objects, 'HorizontalPodAutoscaler');
    assert.equal(hpa.length, 1);
    assert.equal(hpa[0]!.spec.scaleTargetRef.name, worker.metadata.name);
    assert.equal(ofKind(objects, 'PodDisruptionBudget').length, 4);

    const cm = ofKind(objects, 'ConfigMap').find((c) => c.metadata.name.endsWith('-config'))!;
    const { config, raw } = parseChartConfig(cm.data['betrace.yaml'] as string, { BETRACE_KAFKA_SASL_PASSWORD: 'p' });
    assert.equal(config.transport.kind, 'kafka');
    assert.deepEqual(config.transport.kafka.brokers, ['events-kafka-bootstrap.kafka.svc:9093']);
    assert.equal(config.transport.kafka.tls.enabled, true);
    assert.equal(config.transport.kafka.sasl.mechanism, 'scram-sha-512');
    assert.equal(config.transport.kafka.sasl.password, 'p');
    assert.equal(config.transport.kafka.replicationFactor, 3, 'config values merged in');
    assert.equal(config.transport.kafka.groupProtocol, 'consumer', 'KIP-848 consumer groups by default');
    const classic = await renderChart({ files: ['ci/split-kafka-tls-sasl.yaml'], set: { 'kafka.groupProtocol': 'classic' } });
    const classicCm = ofKind(classic, 'ConfigMap').find((c) => c.metadata.name.endsWith('-config'))!;
    assert.equal(parseChartConfig(classicCm.data['betrace.yaml'] as string, { BETRACE_KAFKA_SASL_PASSWORD: 'p' }).config.transport.kafka.groupProtocol, 'classic', 'kafka.groupProtocol reaches the config');
    assert.doesNotMatch(cm.data['betrace.yaml'] as string, /password/, 'the SASL password is not in the ConfigMap');
    for (const d of ofKind(objects, 'Deployment')) {
      const spec = d.spec.template.spec;
      const c = spec.containers[0];
      const env = (c.env as Any[]).find((e) => e.name === 'BETRACE_KAFKA_SASL_PASSWORD');
      assert.deepEqual(env?.valueFrom?.secretKeyRef, { name: 'betrace', key: 'password' }, `${d.metadata.name} SASL password from the Secret`);
      assert.equal(mountAt(c, spec, at(raw, 'transport.kafka.tls.ca_file') as string)?.volume?.secret?.secretName, 'events-cluster-ca-cert', `${d.metadata.name} CA mounted`);
      assert.equal(mountAt(c, spec, '/etc/betrace/secrets/api-token')?.volume?.secret?.secretName, 'betrace-admin');
    }
    assert.equal(ofKind(objects, 'Secret').length, 0, 'existingSecret: the chart creates no Secret');
  });

  it('receiver.spool: the receiver pods mount a volume at the spool directory, an emptyDir or a claim per pod, and betrace accepts the config', async () => {
    const base = { files: ['ci/split-kafka-tls-sasl.yaml'] };
    const objects = await renderChart({ ...base, set: { 'receiver.spool.enabled': 'true', 'receiver.spool.maxBytes': '512MiB', 'receiver.spool.size': '600Mi' } });
    const cm = ofKind(objects, 'ConfigMap').find((c) => c.metadata.name.endsWith('-config'))!;
    const { config } = parseChartConfig(cm.data['betrace.yaml'] as string, { BETRACE_KAFKA_SASL_PASSWORD: 'p' });
    assert.equal(config.receiver.spool.enabled, true);
    assert.equal(config.receiver.spool.maxBytes, 512 * 1024 * 1024);
    const receiver = ofKind(objects, 'Deployment').find((d) => d.metadata.name.endsWith('-receiver'))!;
    const spec = receiver.spec.template.spec;
    const spool = mountAt(spec.containers[0], spec, config.receiver.spool.dir);
    assert.ok(spool && !spool.readOnly && spool.volume?.name === 'spool', `the receiver mounts a volume of its own at ${config.receiver.spool.dir}`);
    assert.equal(spool.volume.emptyDir?.sizeLimit, '600Mi', 'an emptyDir by default, sized by receiver.spool.size');
    for (const d of ofKind(objects, 'Deployment').filter((x) => x !== receiver)) {
      assert.ok(!(d.spec.template.spec.volumes as Any[]).some((v) => v.name === 'spool'), `${d.metadata.name}: no spool volume`);
    }

    const persisted = await renderChart({ ...base, set: { 'receiver.spool.enabled': 'true', 'receiver.spool.persistence.enabled': 'true' } });
    assert.ok(!ofKind(persisted, 'Deployment').some((d) => d.metadata.name.endsWith('-receiver')));
    const sts = ofKind(persisted, 'StatefulSet');
    assert.equal(sts.length, 1, 'with persistence the receivers are a StatefulSet: a replaced pod gets its claim (and what it spooled) back');
    const stsSpec = sts[0]!.spec.template.spec;
    const mount = (stsSpec.containers[0].volumeMounts as Any[]).find((m) => m.mountPath === config.receiver.spool.dir);
    assert.equal(mount?.name, 'spool');
    assert.ok(!(stsSpec.volumes as Any[]).some((v) => v.name === 'spool'), 'the volume comes from the claim template');
    assert.equal(sts[0]!.spec.volumeClaimTemplates[0].metadata.name, 'spool');
    assert.equal(sts[0]!.spec.volumeClaimTemplates[0].spec.resources.requests.storage, '1280Mi');
    assert.equal((await helmLint({ ...base, set: { 'receiver.spool.enabled': 'true', 'receiver.spool.persistence.enabled': 'true' } })).code, 0);

    const allInOne = await helmTemplate({ set: { 'auth.token': 't', 'receiver.spool.enabled': 'true' } });
    assert.notEqual(allInOne.code, 0);
    assert.match(allInOne.stderr, /receiver\.spool spools exports in front of Kafka: it needs split roles \(allInOne\.enabled: false\)/);
  });
});
