/**
 * The README's Kubernetes setups (deploy/helm/examples/*.yaml) render as the README says,
 * installed the way it shows (`-f` the example, `--set auth.token`, the seed rules with
 * `--set-file`): helm lint --strict passes, the config betrace is given is one it accepts,
 * and the pods run the roles the setup needs.
 *
 * tempo.yaml: one pod, every span and violation span to Tempo's distributor.
 * beside-collector.yaml: betrace off the trace path, fed by a Collector's Kafka exporter:
 * workers and the API only, no receiver (no OTLP port, no Service) and no forwarder; with
 * `replayJob`, a Job whose pods share a replay through `betrace replay --group`.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseRuleFile } from '../../src/rules/rule-file.ts';
import { helmLint, helmTemplate, ofKind, parseChartConfig, renderChart, repoRoot, type K8sObject, type ValuesOptions } from './helm.ts';

const TEMPO = 'http://tempo-distributor.tempo.svc:4317';
const SEED = 'config/rules/seed-invariants.yaml';

/** The README's install command for an example: its values file, a token and the seed rules. */
function readmeInstall(example: string): ValuesOptions {
  return {
    files: [join('..', 'examples', example)],
    set: { 'auth.token': 'test-token' },
    setFile: { 'rules.seed-invariants\\.yaml': SEED },
  };
}

/** Name of the component (app.kubernetes.io/component) → the roles its container runs. */
function rolesByComponent(objects: readonly K8sObject[]): Map<string, string> {
  const roles = new Map<string, string>();
  for (const d of [...ofKind(objects, 'Deployment'), ...ofKind(objects, 'StatefulSet')]) {
    const args = d.spec.template.spec.containers[0].args as string[];
    roles.set(d.metadata.labels!['app.kubernetes.io/component']!, args[args.indexOf('--roles') + 1]!);
  }
  return roles;
}

function chartConfig(objects: readonly K8sObject[]): ReturnType<typeof parseChartConfig> {
  const cm = ofKind(objects, 'ConfigMap').find((c) => c.metadata.name.endsWith('-config'));
  assert.ok(cm, 'config ConfigMap');
  return parseChartConfig(cm.data['betrace.yaml'] as string);
}

function assertSeedRulesMounted(objects: readonly K8sObject[]): void {
  const rules = ofKind(objects, 'ConfigMap').find((c) => c.metadata.name.endsWith('-rules'));
  assert.equal(rules?.data?.['seed-invariants.yaml'], readFileSync(join(repoRoot, SEED), 'utf8'), 'the seed rule file, verbatim');
  const parsed = parseRuleFile(rules.data['seed-invariants.yaml'], SEED);
  assert.deepEqual(parsed.errors, []);
  assert.equal(parsed.rules.length, 4);
}

describe('helm chart: the README Kubernetes setups', () => {
  for (const example of ['tempo.yaml', 'beside-collector.yaml']) {
    it(`examples/${example} passes helm lint --strict`, async () => {
      const result = await helmLint(readmeInstall(example));
      assert.equal(result.code, 0, result.stdout + result.stderr);
    });
  }

  it('examples/tempo.yaml: one pod running every role, spans and violation spans to the Tempo distributor', async () => {
    const objects = await renderChart(readmeInstall('tempo.yaml'));
    assert.deepEqual(Object.fromEntries(rolesByComponent(objects)), { allinone: 'receiver,worker,forwarder,api' });
    const { config } = chartConfig(objects);
    assert.equal(config.downstream.endpoint, TEMPO);
    assert.equal(config.transport.kind, 'embedded');
    const receiver = ofKind(objects, 'Service').find((s) => s.metadata.name.endsWith('-receiver'));
    assert.deepEqual(
      (receiver?.spec.ports as Array<{ name: string; port: number }>).map((p) => [p.name, p.port]),
      [
        ['otlp-grpc', 4317],
        ['otlp-http', 4318],
      ],
    );
    assert.equal(ofKind(objects, 'PersistentVolumeClaim').length, 1, 'violations and API rules kept on a volume');
    assertSeedRulesMounted(objects);
  });

  it('examples/beside-collector.yaml: workers and the API only, reading the spans topic a Collector writes, violation spans to the backend', async () => {
    const objects = await renderChart(readmeInstall('beside-collector.yaml'));
    assert.deepEqual(Object.fromEntries(rolesByComponent(objects)), { worker: 'worker', api: 'api' });
    for (const d of ofKind(objects, 'Deployment')) {
      const ports = (d.spec.template.spec.containers[0].ports as Array<{ name: string }>).map((p) => p.name);
      assert.deepEqual(ports, ['admin'], `${d.metadata.name} listens for no OTLP`);
    }
    assert.deepEqual(
      ofKind(objects, 'Service').map((s) => s.metadata.name),
      ['rel-betrace-api', 'rel-betrace-metrics'],
      'no receiver Service: nothing sends OTLP to betrace',
    );
    assert.deepEqual(
      ofKind(objects, 'PodDisruptionBudget').map((p) => p.metadata.name),
      ['rel-betrace-worker', 'rel-betrace-api'],
    );
    const { config } = chartConfig(objects);
    assert.equal(config.transport.kind, 'kafka');
    assert.deepEqual(config.transport.kafka.brokers, ['kafka-bootstrap.kafka.svc:9092']);
    // What the Collector's kafka exporter is configured with in the README.
    assert.equal(config.transport.kafka.spansTopic, 'betrace.spans');
    assert.equal(config.transport.partitioner, 'sarama', "the Collector exporter's default partitioner (sticky_key, sarama_compat)");
    assert.equal(config.downstream.endpoint, TEMPO);
    assertSeedRulesMounted(objects);
  });

  it('a replay Job beside the Collector: N pods run the same `betrace replay --group`, with the config and rule files the workers get', async () => {
    const install = readmeInstall('beside-collector.yaml');
    const options = { ...install, set: { ...install.set, 'replayJob.enabled': 'true', 'replayJob.name': 'incident-42', 'replayJob.parallelism': '4', 'replayJob.rules[0]': 'payment-idempotency', 'replayJob.rules[1]': 'admin-audit-log', 'replayJob.emit': 'true' } };
    assert.equal((await helmLint(options)).code, 0);
    const objects = await renderChart(options);
    const [job] = ofKind(objects, 'Job');
    assert.ok(job, 'a Job');
    assert.equal(job.metadata.name, 'rel-betrace-replay-incident-42');
    assert.equal(job.spec.parallelism, 4);
    assert.equal(job.spec.completions, undefined, 'done once the pods exit 0, each once every partition is done');
    const pod = job.spec.template.spec;
    const args = pod.containers[0].args as string[];
    const flag = (name: string) => args[args.indexOf(name) + 1];
    assert.equal(args[0], 'replay');
    assert.equal(flag('--group'), 'incident-42');
    assert.equal(flag('--source'), 'kafka');
    assert.ok(args.includes('--emit'));
    const worker = ofKind(objects, 'Deployment').find((d) => d.metadata.name.endsWith('-worker'))!;
    assert.equal(flag('--config'), (worker.spec.template.spec.containers[0].args as string[])[2], "the workers' config file");
    const volumes = (spec: { volumes: Array<{ name: string; configMap?: { name: string } }> }) => Object.fromEntries(spec.volumes.filter((v) => v.configMap).map((v) => [v.name, v.configMap!.name]));
    assert.deepEqual(volumes(pod), volumes(worker.spec.template.spec), 'the same config and rules ConfigMaps');
    const rules = parseRuleFile(ofKind(objects, 'ConfigMap').find((c) => c.metadata.name.endsWith('-rules'))!.data['seed-invariants.yaml'], SEED).rules.map((r) => r.definition.id);
    for (const id of flag('--rule')!.split(',')) assert.ok(rules.includes(id), `rule ${id} is in the mounted rule files`);

    const noName = await helmTemplate({ ...options, set: { ...options.set, 'replayJob.name': '' } });
    assert.match(noName.stderr, /replayJob\.name must be 1-40 lowercase letters/);
    const allInOne = await helmTemplate({ ...readmeInstall('tempo.yaml'), set: { 'auth.token': 't', 'replayJob.enabled': 'true', 'replayJob.name': 'x', 'replayJob.rules[0]': 'a' } });
    assert.match(allInOne.stderr, /replayJob replays from Kafka/);
  });
});
