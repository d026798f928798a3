/** `betrace run`: starts the configured roles and runs until SIGINT/SIGTERM. */
import { ConfigError, downstreamLoopProblem, loadConfig } from '../config/index.ts';
import { createPipeline, parseRoles, ALL_ROLES } from './pipeline.ts';
import { createLogger } from '../telemetry/logger.ts';
import { ExitCode, type Output } from './output.ts';

/** How long past shutdown_timeout a shutdown may still take before the process exits regardless. */
const SHUTDOWN_BACKSTOP_MS = 5000;

export interface RunOptions {
  readonly config?: string;
  readonly roles?: string;
}

/** Resolves with the exit status once the pipeline has shut down. */
export async function runCommand(options: RunOptions, out: Output): Promise<number> {
  let config;
  try {
    config = loadConfig(options.config);
    const loop = downstreamLoopProblem(config);
    if (loop !== undefined) throw new ConfigError(loop);
  } catch (err) {
    if (err instanceof ConfigError) {
      out.stderr(`betrace: ${err.message}`);
      return ExitCode.inputError;
    }
    throw err;
  }
  const roles = parseRoles(options.roles ?? ALL_ROLES.join(','));
  if (typeof roles === 'string') {
    out.stderr(`betrace: --roles: ${roles}`);
    return ExitCode.inputError;
  }
  const logger = createLogger(config.log.level);
  let pipeline;
  try {
    pipeline = createPipeline({ config, roles, logger });
  } catch (err) {
    out.stderr(`betrace: ${(err as Error).message}`);
    return ExitCode.inputError;
  }
  try {
    await pipeline.start();
  } catch (err) {
    out.stderr(`betrace: cannot start: ${(err as Error).message}`);
    await pipeline.shutdown().catch(() => undefined);
    return ExitCode.inputError;
  }
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      logger.info({ signal }, 'shutting down');
      resolve();
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  // The pipeline bounds its own shutdown by shutdown_timeout (the exporters are abandoned then);
  // this is the backstop for a component that still does not finish.
  let backstop: NodeJS.Timeout | undefined;
  const stopped = await Promise.race([
    pipeline.shutdown().then(() => true),
    new Promise<false>((resolve) => (backstop = setTimeout(() => resolve(false), config.shutdownTimeoutMs + SHUTDOWN_BACKSTOP_MS))),
  ]);
  clearTimeout(backstop);
  if (!stopped) logger.error({ shutdownTimeoutMs: config.shutdownTimeoutMs }, `still stopping ${SHUTDOWN_BACKSTOP_MS / 1000}s after shutdown_timeout: exiting regardless`);
  logger.flush();
  return stopped ? ExitCode.ok : ExitCode.inputError;
}
