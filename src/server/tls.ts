/**
 * Server TLS: the certificate files read into options, and watched and re-read when
 * they change (certificate rotation without a restart).
 */
import { readFileSync, statSync } from 'node:fs';
import type { SecureContextOptions } from 'node:tls';
import type { Component } from '../component.ts';
import type { TlsConfig } from '../config/index.ts';
import type { Logger } from '../telemetry/logger.ts';

export interface ServerTlsOptions extends SecureContextOptions {
  requestCert: boolean;
  rejectUnauthorized: boolean;
}

/** Options for https.createServer / server.setSecureContext. Throws when a file cannot be read. */
export function readServerTls(tls: TlsConfig): ServerTlsOptions {
  const withCa = tls.clientCaFile !== '';
  return {
    cert: readFileSync(tls.certFile),
    key: readFileSync(tls.keyFile),
    ...(withCa ? { ca: readFileSync(tls.clientCaFile) } : {}),
    requestCert: withCa,
    rejectUnauthorized: withCa,
  };
}

/**
 * Watches the TLS files (a stat a second: works for in-place writes, renames and
 * Kubernetes Secret symlink swaps) and hands the new options over when any
 * changed. A half-written or broken pair is logged and the previous one kept.
 */
export class TlsFilesWatcher implements Component {
  readonly #tls: TlsConfig;
  readonly #onChange: (options: ServerTlsOptions) => void;
  readonly #logger: Logger;
  #stamp = '';
  #timer: NodeJS.Timeout | undefined;

  constructor(tls: TlsConfig, onChange: (options: ServerTlsOptions) => void, logger: Logger) {
    this.#tls = tls;
    this.#onChange = onChange;
    this.#logger = logger;
    this.#stamp = this.#currentStamp();
  }

  #currentStamp(): string {
    return [this.#tls.certFile, this.#tls.keyFile, this.#tls.clientCaFile]
      .filter((f) => f !== '')
      .map((f) => {
        try {
          const s = statSync(f);
          return `${s.mtimeMs}:${s.size}:${s.ino}`;
        } catch {
          return 'missing';
        }
      })
      .join('|');
  }

  start(): Promise<void> {
    this.#timer = setInterval(() => {
      const stamp = this.#currentStamp();
      if (stamp === this.#stamp) return;
      this.#stamp = stamp;
      try {
        this.#onChange(readServerTls(this.#tls));
        this.#logger.info({ cert: this.#tls.certFile }, 'TLS certificate reloaded');
      } catch (err) {
        this.#logger.error({ cert: this.#tls.certFile, error: (err as Error).message }, 'TLS files changed but cannot be used: the previous certificate stays');
      }
    }, 1000);
    this.#timer.unref();
    return Promise.resolve();
  }

  shutdown(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    return Promise.resolve();
  }
}
