/**
 * The PrometheusRule, the Grafana dashboard and the runbooks refer only to metrics the
 * code exports (createMetrics(): betrace_* plus prom-client's process_* and nodejs_*),
 * and every alert has its runbook.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { exportedMetricNames, metricNamesIn } from './exported-metrics.ts';
import { ofKind, renderChart, repoRoot } from './helm.ts';

const runbooks = join(repoRoot, 'deploy', 'runbooks');
const ALERTS: Readonly<Record<string, string>> = {
  BetraceBackendDown: 'backend-down.md',
  BetraceHighViolationRate: 'high-violation-rate.md',
  BetraceCriticalViolationSpike: 'critical-violation-spike.md',
  BetraceHighCPU: 'high-cpu.md',
  BetraceHighMemory: 'high-memory.md',
  BetraceHighLatency: 'high-latency.md',
  BetraceHighErrorRate: 'high-error-rate.md',
  BetraceComplianceEmissionFailure: 'compliance-emission-failure.md',
  BetraceViolationStoreDegraded: 'violation-store-degraded.md',
  BetraceRuleQuarantined: 'rule-quarantined.md',
  BetraceKafkaUnreachable: 'kafka-unreachable.md',
  BetraceSpoolBacklog: 'spool-backlog.md',
};
/** Alerts on Kafka-mode metrics: not rendered for an all-in-one install (embedded transport). */
const KAFKA_ALERTS = ['BetraceKafkaUnreachable', 'BetraceSpoolBacklog'];
/** Series Prometheus itself produces for every target. */
const PROMETHEUS_SERIES = new Set(['up']);

function assertKnown(names: Iterable<string>, exported: Set<string>, where: string): void {
  for (const name of names) assert.ok(exported.has(name) || PROMETHEUS_SERIES.has(name), `${where}: ${name} is not a metric betrace exports`);
}

interface AlertRule {
  alert: string;
  expr: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

async function alertRules(set?: Readonly<Record<string, string>>): Promise<AlertRule[]> {
  const objects = await renderChart({ files: ['ci/monitoring.yaml'], set: set ?? {} });
  const rules = ofKind(objects, 'PrometheusRule');
  assert.equal(rules.length, 1);
  return (rules[0]!.spec.groups as Array<{ rules: AlertRule[] }>).flatMap((g) => g.rules);
}

describe('PrometheusRule', () => {
  it('has exactly the alerts of the runbooks', async () => {
    const rules = await alertRules();
    assert.deepEqual(rules.map((r) => r.alert).sort(), Object.keys(ALERTS).sort());
  });

  it('leaves out the Kafka alerts for an all-in-one install, whose betrace_transport_kafka_reachable stays 0', async () => {
    const rules = await alertRules({ 'allInOne.enabled': 'true' });
    const expected = Object.keys(ALERTS).filter((a) => !KAFKA_ALERTS.includes(a));
    assert.deepEqual(rules.map((r) => r.alert).sort(), expected.sort());
  });

  it('refers only to metrics the code exports (and up)', async () => {
    const exported = await exportedMetricNames();
    for (const rule of await alertRules()) {
      const names = metricNamesIn(rule.expr);
      assert.ok(names.length > 0, `${rule.alert}: no metric found in ${rule.expr}`);
      assertKnown(names, exported, rule.alert);
    }
  });

  it('gives every alert a severity and a runbook_url to its runbook in deploy/runbooks', async () => {
    for (const rule of await alertRules()) {
      assert.match(rule.labels?.severity ?? '', /^(critical|warning)$/, `${rule.alert} severity`);
      const url = rule.annotations?.runbook_url ?? '';
      assert.match(url, /\/deploy\/runbooks\/[a-z-]+\.md$/, `${rule.alert} runbook_url`);
      assert.equal(basename(url), ALERTS[rule.alert]);
      assert.ok(existsSync(join(runbooks, basename(url))), `${url} exists`);
      assert.ok(rule.annotations?.summary, `${rule.alert} summary`);
    }
  });
});

describe('runbooks', () => {
  it('follow the template and are all listed in the index', () => {
    const index = readFileSync(join(runbooks, 'README.md'), 'utf8');
    const files = readdirSync(runbooks).filter((f) => f !== 'README.md');
    assert.deepEqual(files.sort(), Object.values(ALERTS).sort());
    for (const file of files) {
      const text = readFileSync(join(runbooks, file), 'utf8');
      const headings = [...text.matchAll(/^## (.+)$/gm)].map((m) => m[1]);
      assert.deepEqual(headings, ['Symptom', 'Impact', 'Diagnosis', 'Mitigation', 'Resolution', 'Prevention'], file);
      assert.ok(index.includes(`](${file})`), `${file} listed in README.md`);
    }
  });

  it('name only metrics the code exports', async () => {
    const exported = await exportedMetricNames();
    for (const file of readdirSync(runbooks)) {
      const text = readFileSync(join(runbooks, file), 'utf8');
      const names = [...text.matchAll(/\b(?:betrace|process|nodejs)_[a-z0-9_]+/g)].map((m) => m[0]);
      // Prefixes in grep patterns (betrace_receiver_request_duration_seconds_(sum|count)) are fine.
      for (const name of names) {
        const known = exported.has(name) || (name.endsWith('_') && [...exported].some((e) => e.startsWith(name)));
        assert.ok(known, `${file}: ${name} is not a metric betrace exports`);
      }
    }
  });
});

describe('Grafana dashboard', () => {
   
  type Any = any;
  const dashboard = JSON.parse(readFileSync(join(repoRoot, 'deploy', 'grafana', 'betrace-dashboard.json'), 'utf8'));
  const panels = (dashboard.panels as Any[]).flatMap((p: Any): Any[] => [p, ...((p.panels as Any[] | undefined) ?? [])]);
  const exprs = panels.flatMap((p) => ((p.targets as Any[] | undefined) ?? []).map((t) => ({ panel: p.title as string, expr: t.expr as string })));

  it('parses, with unique panel ids and a Prometheus data source variable', () => {
    assert.equal(dashboard.uid, 'betrace-pipeline');
    const ids = panels.map((p) => p.id as number);
    assert.equal(new Set(ids).size, ids.length);
    assert.ok((dashboard.templating.list as Any[]).some((v) => v.type === 'datasource' && v.query === 'prometheus'));
    assert.ok(exprs.length >= 20);
  });

  it('refers only to metrics the code exports', async () => {
    const exported = await exportedMetricNames();
    for (const { panel, expr } of exprs) {
      const names = metricNamesIn(expr);
      assert.ok(names.length > 0, `${panel}: no metric in ${expr}`);
      assertKnown(names, exported, `panel "${panel}"`);
    }
    for (const v of dashboard.templating.list as Any[]) {
      if (v.type !== 'query') continue;
      const m = /^label_values\(([^,]+),\s*\w+\)$/.exec(v.query.query as string);
      assert.ok(m, `variable ${v.name}: label_values(metric, label)`);
      assertKnown(metricNamesIn(m[1]!), exported, `variable ${v.name}`);
    }
  });

  it('shows the pipeline and the violations', () => {
    const used = new Set(exprs.flatMap(({ expr }) => metricNamesIn(expr)));
    for (const name of [
      'betrace_receiver_spans_received_total',
      'betrace_receiver_spans_accepted_total',
      'betrace_receiver_spans_rejected_total',
      'betrace_transport_queued_bytes',
      'betrace_exporter_spans_sent_total',
      'betrace_exporter_spans_failed_total',
      'betrace_exporter_spans_dropped_total',
      'betrace_notifications_sent_total',
      'betrace_notifications_failed_total',
      'betrace_notifications_queued',
      'betrace_notifications_oldest_pending_seconds',
      'betrace_worker_live_traces',
      'betrace_rule_evaluation_duration_seconds_bucket',
      'betrace_worker_late_spans_total',
      'betrace_worker_forced_cuts_total',
      'betrace_violations_total',
    ]) {
      assert.ok(used.has(name), `dashboard shows ${name}`);
    }
    const byRule = exprs.some(({ expr }) => /betrace_violations_total/.test(expr) && /by \(rule_id\)/.test(expr));
    const bySeverity = exprs.some(({ expr }) => /betrace_violations_total/.test(expr) && /by \(severity\)/.test(expr));
    assert.ok(byRule && bySeverity, 'violations by rule and by severity');
  });

  it('shows Kafka reachability, the violations topic and the receiver spool', () => {
    const used = new Set(exprs.flatMap(({ expr }) => metricNamesIn(expr)));
    for (const name of [
      'betrace_transport_kafka_reachable',
      'betrace_violation_reemissions_total',
      'betrace_violation_writes_failed_total',
      'betrace_receiver_spool_pending_bytes',
      'betrace_receiver_spool_oldest_age_seconds',
      'betrace_receiver_spool_refused_total',
    ]) {
      assert.ok(used.has(name), `dashboard shows ${name}`);
    }
  });
});
