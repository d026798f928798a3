#!/usr/bin/env node
/**
 * The betrace command line. Only this entry point exits the process; every
 * command returns its exit status (0 success, 1 usage or input error, 2
 * violations found with --fail-on-violation).
 */
import { Command, CommanderError } from 'commander';
import { BETRACE_VERSION } from '../version.ts';
import { loadConfig, ConfigError } from '../config/index.ts';
import { configReference } from './config-reference.ts';
import { nodeFlagsFor, restartWithNodeFlags } from './node-flags.ts';
import { ExitCode, processOutput, type Output } from './output.ts';
import { runCommand } from './run.ts';
import { rulesCheck } from './rules-check.ts';
import { rulesTest } from './rules-test.ts';
import { replayCommand, type ReplayCommandOptions } from './replay.ts';
import { demoCommand } from './demo.ts';
import { notifyTest } from './notify-test.ts';

export function buildProgram(out: Output, setStatus: (status: Promise<number> | number) => void): Command {
  const program = new Command('betrace')
    .description('Checks invariants learned from incidents on every trace: an OTLP pipeline that evaluates rules and emits violations as spans.')
    .version(BETRACE_VERSION)
    .showHelpAfterError()
    .configureOutput({ writeOut: (s) => out.stdout(s), writeErr: (s) => out.stderr(s) })
    .exitOverride();

  program
    .command('run')
    .description('Run the pipeline: receiver, worker, forwarder and API (or the roles given).')
    .option('-c, --config <file>', 'configuration file (YAML); built-in defaults when omitted')
    .option('-r, --roles <roles>', 'comma-separated roles: receiver,worker,forwarder,api')
    .action((opts: { config?: string; roles?: string }) => {
      setStatus(runCommand(opts, out));
    });

  const rules = program.command('rules').description('Rule tools: check rule files, test them on traces.');
  rules
    .command('check')
    .description('Check rule files: every error as FILE:LINE:COL, warnings for likely mistakes.')
    .option('--explain', 'print the canonical reading of every rule')
    .argument('<files...>', 'rule files (YAML)')
    .action((files: string[], opts: { explain?: boolean }) => {
      setStatus(rulesCheck(files, { explain: opts.explain === true }, out));
    });
  rules
    .command('test')
    .description('Evaluate rules on traces from files (OTLP JSON or protobuf) and print every violation.')
    .requiredOption('--rules <file>', 'rule file (YAML)')
    .requiredOption('--traces <files...>', 'trace files: OTLP JSON (one request per line or per file) or protobuf')
    .option('--fail-on-violation', 'exit 2 when any violation is found')
    .action((opts: { rules: string; traces: string[]; failOnViolation?: boolean }) => {
      setStatus(rulesTest({ rules: opts.rules, traces: opts.traces, failOnViolation: opts.failOnViolation === true }, out));
    });

  program
    .command('replay')
    .description('Replay rules over past traces (the spans topic or OTLP files) and report violations per day.')
    .option('--rules <file>', 'rule file (YAML)')
    .option('--rule <ids...>', 'rule ids from the rule files of the configuration (rules.paths); comma-separated or repeated')
    .option('--from <time>', 'start, inclusive: RFC 3339, unix seconds, 30d/2h/15m ago, or now')
    .option('--to <time>', 'end, exclusive (same forms)')
    .option('--source <source...>', '"history" (the local history), "kafka" (the spans topic), "jaeger://HOST:PORT[?search_depth=N]" (a Jaeger\'s query gRPC API; "jaegers://HOST:PORT[?ca=FILE]" over TLS) or trace files / globs (OTLP JSON or protobuf); default: the running transport\'s history')
    .option('--format <format>', 'table or json', 'table')
    .option('--emit', 'export the violation spans downstream (downstream.endpoint)')
    .option('--fail-on-violation', 'exit 2 when any violation is found')
    .option('-c, --config <file>', 'configuration file (YAML); built-in defaults when omitted')
    .option('--partitions <list>', 'Kafka partitions to read, comma-separated (to split a replay over processes)')
    .option('--group <name>', 'share the spans topic\'s partitions with the other replays of this job name through a Kafka consumer group (a Kubernetes Job with parallelism N); each reports the partitions it replayed')
    .option('--full-scan', 'read every record of the history, not its trace index (the index gives the same answer, faster)')
    .action((opts: ReplayCommandOptions) => {
      setStatus(replayCommand(opts, out));
    });

  program
    .command('demo')
    .description('Send sample traces carrying the seed rules\' incidents to a running betrace, then show the violations it finds.')
    .option('--endpoint <host:port>', 'OTLP/gRPC receiver to send to, http:// or https:// for TLS (default: BETRACE_RECEIVER_GRPC_ENDPOINT, else 127.0.0.1:4317)')
    .option('--api <url>', 'admin API to read the violations from (default: BETRACE_API_ENDPOINT, else 127.0.0.1:12011)')
    .option('--token <token>', 'bearer token of the admin API (default: BETRACE_API_TOKEN)')
    .option('--no-wait', 'send the traces and exit, without waiting for the violations')
    .option('--timeout <seconds>', 'how long to wait for the violations', '60')
    .addHelpText(
      'after',
      [
        '',
        'Sends 8 traces: 4 that violate a rule of config/rules/seed-invariants.yaml (a shipment without',
        'payment confirmation, a payment retried with a new intent id, a tenant-data query without the',
        'tenant filter, an admin action without an audit log) and 4 that keep the rules. betrace evaluates',
        'a trace once no span of it arrived for worker.trace_idle_timeout (5s in config/betrace.yaml).',
        'Exit 0 when the 4 violations, and no others on these traces, are in GET /v1/violations; 1 otherwise.',
        'The receiver\'s token, if it requires one (receiver.auth_token), is read from BETRACE_RECEIVER_TOKEN.',
      ].join('\n'),
    )
    .action((opts: { endpoint?: string; api?: string; token?: string; wait: boolean; timeout: string }) => {
      const timeoutSeconds = Number(opts.timeout);
      if (!Number.isFinite(timeoutSeconds) || timeoutSeconds <= 0) {
        out.stderr(`betrace demo: --timeout must be a positive number of seconds, got ${JSON.stringify(opts.timeout)}`);
        setStatus(ExitCode.inputError);
        return;
      }
      const token = opts.token ?? process.env.BETRACE_API_TOKEN;
      const receiverToken = process.env.BETRACE_RECEIVER_TOKEN;
      setStatus(
        demoCommand(
          {
            // The variables `betrace run` listens on, so a betrace started in the same environment is found.
            endpoint: opts.endpoint ?? (process.env.BETRACE_RECEIVER_GRPC_ENDPOINT || '127.0.0.1:4317'),
            api: opts.api ?? (process.env.BETRACE_API_ENDPOINT || '127.0.0.1:12011'),
            wait: opts.wait,
            timeoutSeconds,
            ...(token ? { token } : {}),
            ...(receiverToken ? { receiverToken } : {}),
          },
          out,
        ),
      );
    });

  program
    .command('notify')
    .description('Notification tools.')
    .command('test')
    .description("Send a sample notification (marked as a test) through each destination of a rule's route.")
    .requiredOption('--rule <id>', 'the rule (from the rule files of the configuration, or --rules)')
    .option('-c, --config <file>', 'configuration file (notifications, rules.paths)')
    .option('--rules <file>', 'rule file holding the rule (default: rules.paths of the configuration)')
    .action((opts: { rule: string; config?: string; rules?: string }) => {
      setStatus(notifyTest(opts, out));
    });

  const config = program.command('config').description('Configuration tools.');
  config
    .command('check')
    .description('Validate a configuration file and exit.')
    .argument('<file>', 'configuration file')
    .action((file: string) => {
      try {
        loadConfig(file);
        out.stdout(`${file}: ok`);
        setStatus(ExitCode.ok);
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        out.stderr(`betrace: ${err.message}`);
        setStatus(ExitCode.inputError);
      }
    });
  config
    .command('reference')
    .description('Print the configuration reference (Markdown).')
    .action(() => {
      out.stdout(configReference());
      setStatus(ExitCode.ok);
    });
  return program;
}

/** Runs the command line; resolves with the exit status. */
export async function main(argv: readonly string[], out: Output = processOutput): Promise<number> {
  let status: Promise<number> | number = ExitCode.ok;
  const program = buildProgram(out, (s) => {
    status = s;
  });
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      return err.exitCode === 0 ? ExitCode.ok : ExitCode.inputError;
    }
    throw err;
  }
  return status;
}

/**
 * Runs the command line of this process (process.argv) and sets its exit code:
 * what bin/betrace.js calls, and `node src/cli/main.ts` / `node dist/cli/main.js`.
 */
export function runCli(): void {
  restartWithNodeFlags(nodeFlagsFor(process.argv[2], process.env, process.argv.slice(3)));
  main(process.argv.slice(2)).then(
    (status) => {
      process.exitCode = status;
      // Handles still open once the command is done (a call to an unreachable downstream abandoned
      // at the shutdown deadline) do not hold the exit back.
      setTimeout(() => process.exit(), 1000).unref();
    },
    (err: unknown) => {
      process.stderr.write(`betrace: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}

if (import.meta.main) runCli();
