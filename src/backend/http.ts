import * as http from 'node:http';
import * as https from 'node:https';
import { rootCertificates } from 'node:tls';
import { CairnError } from '../core/errors.js';
import type { FileSource } from './backend.js';
import { BackendError, isRetryableNetworkError } from './errors.js';

export interface HttpClientOptions {
  /** Sockets per origin (the connection limit). */
  maxSockets?: number;
  /** Extra trusted CA certificates (PEM), in addition to the system roots. */
  caCerts?: Array<string | Buffer>;
  insecureSkipTLSVerify?: boolean;
  /** A request is aborted when its socket is idle this long (connect included). */
  idleTimeoutMs?: number;
}

export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: http.IncomingMessage;
}

/**
 * A minimal keep-alive HTTP(S) client on node:http, for protocols we speak ourselves (restic's
 * REST). Node's global fetch cannot take a CA bundle or a per-client socket limit without the
 * undici package, so this stays on the core modules.
 */
export class HttpClient {
  private readonly httpAgent: http.Agent;
  private readonly httpsAgent: https.Agent;
  private readonly idleMs: number;

  constructor(o: HttpClientOptions = {}) {
    const maxSockets = Math.max(1, o.maxSockets ?? 5);
    this.httpAgent = new http.Agent({ keepAlive: true, maxSockets });
    this.httpsAgent = new https.Agent({
      keepAlive: true,
      maxSockets,
      rejectUnauthorized: !o.insecureSkipTLSVerify,
      ca: o.caCerts?.length ? [...rootCertificates, ...o.caCerts.map((c) => c.toString())] : undefined,
    });
    this.idleMs = o.idleTimeoutMs ?? 60_000;
  }

  get idleTimeoutMs(): number {
    return this.idleMs;
  }

  /**
   * Sends one request; resolves with the response head (the body is left to the caller to read or
   * drain). A FileSource body is streamed from its file; a read error fails the request with it.
   */
  request(method: string, url: URL, headers: Record<string, string>, body?: Uint8Array | FileSource, signal?: AbortSignal): Promise<HttpResponse> {
    return new Promise((resolve, reject) => {
      const isHttps = url.protocol === 'https:';
      if (!isHttps && url.protocol !== 'http:') {
        reject(new CairnError('INVALID_ARGUMENT', `unsupported URL scheme ${url.protocol}`));
        return;
      }
      const h: Record<string, string> = { ...headers };
      const bytes = body instanceof Uint8Array ? body : undefined;
      if (body) h['Content-Length'] = String(bytes ? bytes.length : (body as FileSource).size);
      const req = (isHttps ? https : http).request(url, { method, headers: h, agent: isHttps ? this.httpsAgent : this.httpAgent, signal });
      req.setTimeout(this.idleMs, () => {
        const e = new Error(`no response for ${this.idleMs} ms`);
        e.name = 'TimeoutError';
        req.destroy(e);
      });
      let readError: Error | undefined;
      req.on('error', (e) => {
        if (readError) reject(readError instanceof CairnError ? readError : new CairnError('IO', `${method} ${url.pathname}: reading the file to send failed: ${readError.message}`, { cause: readError }));
        else if (signal?.aborted) reject(signal.reason);
        else reject(new BackendError(`${method} ${url.pathname}: ${e.message}`, { cause: e, retryable: isRetryableNetworkError(e) || e.name === 'TimeoutError' }));
      });
      req.on('response', (res) => {
        // the idle timer of the request would otherwise keep running on the reused socket
        req.setTimeout(0);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res });
      });
      if (body === undefined || bytes) {
        req.end(bytes);
        return;
      }
      const stream = (body as FileSource).stream();
      stream.once('error', (e) => {
        readError ??= e;
        req.destroy(e);
      });
      // the request's end (or failure) ends the file stream too
      req.once('close', () => stream.destroy());
      stream.pipe(req);
    });
  }

  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }
}

/** Reads a small (error or JSON) body as text, capped, and never throws. */
export async function smallText(res: HttpResponse, cap = 64 * 1024): Promise<string> {
  let out = '';
  try {
    for await (const chunk of res.body) {
      if (out.length < cap) out += (chunk as Buffer).toString('utf8');
    }
  } catch {
    /* the caller only wants a message */
  }
  return out.slice(0, cap).trim();
}

/** Discards a body so the socket goes back to the pool. */
export function drain(res: HttpResponse): void {
  res.body.resume();
  res.body.on('error', () => undefined);
}
