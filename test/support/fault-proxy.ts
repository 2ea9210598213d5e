/**
 * A fault-injecting HTTP reverse proxy for tests, bound to 127.0.0.1, placed between cairn and a
 * real server (Ceph RGW, rclone, Azurite, …). Requests are forwarded unchanged (Host header
 * included, so S3 signatures stay valid); rules decide, per request, whether to answer with an
 * error status instead, reset the connection, cut the response body, lie about its length or add
 * latency. Rules are matched in order; probabilities come from a seeded PRNG, so a run is
 * reproducible. Everything injected is counted.
 */
import * as http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type Fault =
  /** Answer with this status (and optional Retry-After, in seconds or as an HTTP date) without forwarding. */
  | { kind: 'status'; status: number; retryAfter?: number | string; body?: string }
  /** Reset the connection before forwarding: the server never sees the request. */
  | { kind: 'reset' }
  /** Forward, let the server finish, then reset instead of answering: the answer is lost. */
  | { kind: 'reset-after-forward' }
  /** Forward, send the head and part of the body (`fraction`, default 0.5), then reset. */
  | { kind: 'reset-mid-body'; fraction?: number }
  /**
   * Forward and cut the body after `fraction` (default 0.5). By default the original length is
   * announced and the connection is closed early; with `lie` the shorter length is announced and
   * the response looks complete.
   */
  | { kind: 'truncate'; fraction?: number; lie?: boolean }
  /** Wait `ms` before forwarding (the request then goes through normally). */
  | { kind: 'latency'; ms: number }
  /** Send the head and part of the body, then stop sending for `ms` (a stalled transfer), then reset. */
  | { kind: 'stall'; ms: number; fraction?: number };

export interface FaultRule {
  /** Matches the request method (GET, PUT, …); any when absent. */
  method?: string;
  /** Matches the request path + query; any when absent. */
  path?: RegExp;
  /** true: only requests with a Range header; false: only requests without one. */
  ranged?: boolean;
  /** Only requests whose headers (lower-case names) match all of these. */
  headers?: Record<string, RegExp>;
  fault: Fault;
  /** Chance per matching request, drawn from the seeded PRNG (default 1). */
  probability?: number;
  /** Let this many matching requests through before the rule starts to fire. */
  after?: number;
  /** Fire at most this many times (default: no limit). */
  times?: number;
}

export interface RequestInfo {
  method: string;
  path: string;
  /** The Range header, if any. */
  range?: string;
  headers: Record<string, string | string[] | undefined>;
  /** 1-based number of this request through the proxy. */
  n: number;
}

export interface FaultProxyOptions {
  /** Where requests go, e.g. { host: '127.0.0.1', port: 7480 }. */
  target: { host: string; port: number };
  rules?: FaultRule[];
  /** PRNG seed (default 1). */
  seed?: number;
  /** A script that may pick a fault for any request; takes precedence over the rules. */
  script?: (r: RequestInfo) => Fault | undefined;
}

/** Deterministic PRNG (mulberry32). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface RuleState {
  rule: FaultRule;
  seen: number;
  fired: number;
}

export class FaultProxy {
  readonly injected: Record<string, number> = {};
  /** Requests seen, and requests forwarded to the server. */
  requests = 0;
  forwarded = 0;
  /** The faults actually injected, in order (method, path, kind). */
  readonly log: Array<{ n: number; at: number; method: string; path: string; kind: Fault['kind'] }> = [];
  private rules: RuleState[] = [];
  private random: () => number;
  private script?: FaultProxyOptions['script'];
  private readonly sockets = new Set<Socket>();
  private readonly upstream = new http.Agent({ keepAlive: true, maxSockets: 64 });

  private constructor(
    private readonly server: http.Server,
    private readonly o: FaultProxyOptions,
  ) {
    this.random = seededRandom(o.seed ?? 1);
    this.setRules(o.rules ?? []);
    this.script = o.script;
  }

  static async start(o: FaultProxyOptions): Promise<FaultProxy> {
    const server = http.createServer();
    const p = new FaultProxy(server, o);
    server.on('request', (req, res) => p.handle(req, res));
    server.on('connection', (s) => {
      p.sockets.add(s);
      s.on('close', () => p.sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    return p;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** http://127.0.0.1:PORT */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Replaces the rules (counters of the old ones are dropped) and optionally reseeds. */
  setRules(rules: FaultRule[], seed?: number): void {
    this.rules = rules.map((rule) => ({ rule, seen: 0, fired: 0 }));
    if (seed !== undefined) this.random = seededRandom(seed);
  }

  setScript(script: FaultProxyOptions['script']): void {
    this.script = script;
  }

  /** Total faults injected (all kinds, latency included). */
  get totalInjected(): number {
    return Object.values(this.injected).reduce((a, b) => a + b, 0);
  }

  resetCounts(): void {
    for (const k of Object.keys(this.injected)) delete this.injected[k];
    this.log.length = 0;
    this.requests = 0;
    this.forwarded = 0;
  }

  private pick(info: RequestInfo): Fault | undefined {
    const scripted = this.script?.(info);
    if (scripted) return scripted;
    for (const s of this.rules) {
      const r = s.rule;
      if (r.method && r.method.toUpperCase() !== info.method) continue;
      if (r.path && !r.path.test(info.path)) continue;
      if (r.ranged !== undefined && r.ranged !== (info.range !== undefined)) continue;
      if (r.headers && !Object.entries(r.headers).every(([k, re]) => re.test(String(info.headers[k] ?? '')))) continue;
      s.seen++;
      if (r.after !== undefined && s.seen <= r.after) continue;
      if (r.times !== undefined && s.fired >= r.times) continue;
      if (r.probability !== undefined && this.random() >= r.probability) continue;
      s.fired++;
      return r.fault;
    }
    return undefined;
  }

  private count(info: RequestInfo, kind: Fault['kind']): void {
    this.injected[kind] = (this.injected[kind] ?? 0) + 1;
    this.log.push({ n: info.n, at: Date.now(), method: info.method, path: info.path, kind });
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const range = req.headers.range;
    const info: RequestInfo = { method: req.method ?? 'GET', path: req.url ?? '/', range: typeof range === 'string' ? range : undefined, headers: req.headers, n: ++this.requests };
    const fault = this.pick(info);
    if (fault) this.count(info, fault.kind);
    if (fault?.kind === 'status') {
      req.resume();
      const headers: http.OutgoingHttpHeaders = { 'content-type': 'application/xml' };
      if (fault.retryAfter !== undefined) headers['retry-after'] = String(fault.retryAfter);
      const body = fault.body ?? `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${fault.status === 503 ? 'SlowDown' : fault.status === 429 ? 'TooManyRequests' : 'InternalError'}</Code><Message>injected by fault proxy</Message></Error>`;
      headers['content-length'] = Buffer.byteLength(body);
      // drain the request first so the client is not cut off while still sending
      req.on('end', () => res.writeHead(fault.status, headers).end(body));
      return;
    }
    if (fault?.kind === 'reset') {
      hardReset(req.socket);
      return;
    }
    const go = () => this.forward(req, res, fault);
    if (fault?.kind === 'latency') setTimeout(go, fault.ms);
    else go();
  }

  private forward(req: http.IncomingMessage, res: http.ServerResponse, fault: Fault | undefined): void {
    this.forwarded++;
    const up = http.request({
      host: this.o.target.host,
      port: this.o.target.port,
      method: req.method,
      path: req.url,
      headers: req.headers,
      agent: this.upstream,
    });
    up.on('error', () => hardReset(req.socket));
    req.on('aborted', () => up.destroy());
    req.pipe(up);
    up.on('response', (ures) => {
      const status = ures.statusCode ?? 502;
      const headers = { ...ures.headers };
      if (!fault || fault.kind === 'latency') {
        res.writeHead(status, headers);
        ures.pipe(res);
        ures.on('error', () => hardReset(req.socket));
        return;
      }
      // Every other fault needs the whole upstream body first.
      const chunks: Buffer[] = [];
      ures.on('data', (c: Buffer) => chunks.push(c));
      ures.on('error', () => hardReset(req.socket));
      ures.on('end', () => {
        const body = Buffer.concat(chunks);
        const cut = (f?: number) => Math.floor(body.length * Math.min(1, Math.max(0, f ?? 0.5)));
        switch (fault.kind) {
          case 'reset-after-forward':
            hardReset(req.socket);
            return;
          case 'reset-mid-body': {
            res.writeHead(status, headers);
            res.write(body.subarray(0, cut(fault.fraction)), () => setTimeout(() => hardReset(req.socket), 5));
            return;
          }
          case 'truncate': {
            const n = cut(fault.fraction);
            if (fault.lie) {
              delete headers['transfer-encoding'];
              headers['content-length'] = String(n);
              if (headers['content-range']) {
                // keep the range header consistent with the lie, as a broken server would
                headers['content-range'] = String(headers['content-range']).replace(/^bytes (\d+)-(\d+)/, (_m, a: string) => `bytes ${a}-${Number(a) + Math.max(0, n - 1)}`);
              }
              res.writeHead(status, headers);
              res.end(body.subarray(0, n));
            } else {
              res.writeHead(status, headers);
              // the announced length is kept: close the connection once the partial body is out
              res.write(body.subarray(0, n), () => setTimeout(() => req.socket.end(), 5));
            }
            return;
          }
          case 'stall': {
            res.writeHead(status, headers);
            res.write(body.subarray(0, cut(fault.fraction)));
            setTimeout(() => hardReset(req.socket), fault.ms);
            return;
          }
        }
      });
    });
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.upstream.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** Resets a connection (RST where the platform allows, otherwise a plain destroy). */
function hardReset(s: Socket): void {
  const r = s as Socket & { resetAndDestroy?: () => void };
  if (typeof r.resetAndDestroy === 'function' && !s.destroyed) r.resetAndDestroy();
  else s.destroy();
}
