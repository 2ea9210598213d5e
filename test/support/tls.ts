/**
 * TLS for tests: a throw-away CA and a server certificate for 127.0.0.1 (made with openssl), and
 * a TLS terminator on a free loopback port that hands the decrypted bytes to a plain-HTTP server.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import * as tls from 'node:tls';

export interface TestCerts {
  /** PEM of the CA that signed the server certificate (what a client must trust). */
  caPem: Buffer;
  caFile: string;
  key: Buffer;
  cert: Buffer;
}

/** Makes a CA and a certificate for IP 127.0.0.1 / localhost in `dir`. */
export function makeCerts(dir: string): TestCerts {
  const f = (n: string) => path.join(dir, n);
  const ssl = (...args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=cairn test CA', '-keyout', f('ca.key'), '-out', f('ca.pem'));
  ssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', f('server.key'), '-out', f('server.csr'));
  require_ext(f('ext.cnf'));
  ssl('x509', '-req', '-in', f('server.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '2', '-extfile', f('ext.cnf'), '-out', f('server.pem'));
  return { caPem: readFileSync(f('ca.pem')), caFile: f('ca.pem'), key: readFileSync(f('server.key')), cert: readFileSync(f('server.pem')) };
}

function require_ext(file: string): void {
  execFileSync('sh', ['-c', `printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\nbasicConstraints=CA:FALSE\\n' > '${file}'`]);
}

export interface TlsTerminator {
  port: number;
  close(): Promise<void>;
}

/** Accepts TLS on a free port and pipes each connection to 127.0.0.1:targetPort in the clear. */
export async function startTlsTerminator(targetPort: number, certs: TestCerts): Promise<TlsTerminator> {
  const sockets = new Set<net.Socket>();
  const server = tls.createServer({ key: certs.key, cert: certs.cert }, (client) => {
    const up = net.connect(targetPort, '127.0.0.1');
    sockets.add(client);
    sockets.add(up);
    client.on('close', () => sockets.delete(client));
    up.on('close', () => sockets.delete(up));
    client.on('error', () => up.destroy());
    up.on('error', () => client.destroy());
    client.pipe(up).pipe(client);
  });
  server.on('tlsClientError', () => undefined); // clients that refuse our certificate are expected
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
