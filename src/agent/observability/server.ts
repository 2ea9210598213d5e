/**
 * The agent's HTTP endpoint (Velero's node agent serves metrics on :8085): `/metrics` for
 * Prometheus, `/healthz` for the liveness probe (the event loop answers, so the process is alive),
 * `/readyz` for the readiness probe (200 only while the agent says it is ready; 503 with the
 * reason as plain text otherwise).
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { CairnError, errnoCode, errorMessage } from '../../core/errors.js';

export interface ListenAddress {
  /** undefined: every interface (Go's ":8085"). */
  host?: string;
  port: number;
}

/** Parses Go-style listen addresses: ":8085", "0.0.0.0:8085", "localhost:8085", "[::1]:8085", or a bare port. */
export function parseListenAddress(address: string): ListenAddress {
  const a = address.trim();
  let host: string | undefined;
  let portText: string;
  const bracketed = /^\[([^\]]+)\]:(\d+)$/.exec(a);
  if (bracketed) {
    host = bracketed[1];
    portText = bracketed[2]!;
  } else if (/^\d+$/.test(a)) {
    portText = a;
  } else {
    const i = a.lastIndexOf(':');
    if (i < 0) throw badAddress(address);
    host = a.slice(0, i) || undefined;
    portText = a.slice(i + 1);
    // an unbracketed IPv6 address is ambiguous ("::1:8085"): require brackets like Go does
    if (host?.includes(':')) throw badAddress(address);
  }
  if (!/^\d+$/.test(portText)) throw badAddress(address);
  const port = Number(portText);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw badAddress(address);
  return { host, port };
}

function badAddress(address: string): CairnError {
  return new CairnError('INVALID_ARGUMENT', `invalid listen address ${JSON.stringify(address)}: expected [host]:port, e.g. ":8085" or "127.0.0.1:8085"`);
}

export interface Readiness {
  ready(): boolean;
  reason(): string | undefined;
}

export interface ObservabilityServer {
  host: string;
  port: number;
  close(): Promise<void>;
}

export async function startObservabilityServer(o: { address: ListenAddress; registry: Registry; readiness: Readiness }): Promise<ObservabilityServer> {
  const server = http.createServer((req, res) => {
    void handle(req, res, o.registry, o.readiness);
  });
  // Probes and scrapes are tiny; do not let a slow client hold a socket for long.
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    const onError = (e: unknown) => {
      const where = `${o.address.host ?? ''}:${o.address.port}`;
      const why = errnoCode(e) === 'EADDRINUSE' ? 'address already in use' : errnoCode(e) === 'EACCES' ? 'permission denied' : errorMessage(e);
      reject(new CairnError('INVALID_ARGUMENT', `cannot serve metrics on ${where}: ${why}`, { cause: e }));
    };
    server.once('error', onError);
    server.listen({ host: o.address.host, port: o.address.port }, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const bound = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    host: bound.address,
    port: bound.port,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Prometheus keeps connections alive; do not wait for it to hang up.
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

async function handle(req: http.IncomingMessage, res: http.ServerResponse, registry: Registry, readiness: Readiness): Promise<void> {
  const path = (req.url ?? '/').split('?')[0];
  const send = (status: number, body: string, contentType = 'text/plain; charset=utf-8', extra: Record<string, string> = {}) => {
    res.writeHead(status, { 'Content-Type': contentType, 'Cache-Control': 'no-store', 'Content-Length': Buffer.byteLength(body), ...extra });
    res.end(req.method === 'HEAD' ? undefined : body);
  };
  try {
    if (path !== '/metrics' && path !== '/healthz' && path !== '/readyz') return send(404, 'not found\n');
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'method not allowed\n', undefined, { Allow: 'GET, HEAD' });
    switch (path) {
      case '/healthz':
        return send(200, 'ok\n');
      case '/readyz': {
        let ready = false;
        let reason: string | undefined;
        try {
          ready = readiness.ready();
          reason = ready ? undefined : readiness.reason();
        } catch (e) {
          reason = `readiness check failed: ${errorMessage(e)}`;
        }
        return ready ? send(200, 'ok\n') : send(503, `${reason || 'not ready'}\n`);
      }
      case '/metrics': {
        const body = await registry.metrics();
        return send(200, body, registry.contentType);
      }
    }
  } catch (e) {
    if (!res.headersSent) send(500, `error: ${errorMessage(e)}\n`);
    else res.destroy();
  }
}
