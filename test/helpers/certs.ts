/** A throwaway CA with server and client certificates for 127.0.0.1 (openssl), for TLS tests. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCerts {
  readonly dir: string;
  readonly ca: string;
  readonly caKey: string;
  readonly serverCert: string;
  readonly serverKey: string;
  readonly clientCert: string;
  readonly clientKey: string;
  /** Issues another certificate for 127.0.0.1 into the given paths (rotation). Returns its serial. */
  issueServer(cert: string, key: string): string;
}

function openssl(args: string[], cwd: string): string {
  return execFileSync('openssl', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export function makeTestCerts(): TestCerts {
  const dir = mkdtempSync(join(tmpdir(), 'betrace-certs-'));
  const p = (f: string) => join(dir, f);
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', p('ca.key'), '-out', p('ca.pem'), '-days', '2', '-subj', '/CN=betrace test CA'], dir);
  writeFileSync(p('server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  writeFileSync(p('client.ext'), 'extendedKeyUsage=clientAuth\n');
  let serial = 1;
  const issue = (name: string, ext: string, cert: string, key: string): string => {
    const s = String(serial++ + Date.now());
    openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', p(`${name}.csr`), '-subj', `/CN=${name}`], dir);
    openssl(['x509', '-req', '-in', p(`${name}.csr`), '-CA', p('ca.pem'), '-CAkey', p('ca.key'), '-set_serial', s, '-days', '2', '-extfile', p(ext), '-out', cert], dir);
    return BigInt(s).toString(16).toUpperCase();
  };
  issue('server', 'server.ext', p('server.pem'), p('server.key'));
  issue('client', 'client.ext', p('client.pem'), p('client.key'));
  return {
    dir,
    ca: p('ca.pem'),
    caKey: p('ca.key'),
    serverCert: p('server.pem'),
    serverKey: p('server.key'),
    clientCert: p('client.pem'),
    clientKey: p('client.key'),
    issueServer: (cert, key) => issue('server', 'server.ext', cert, key),
  };
}
