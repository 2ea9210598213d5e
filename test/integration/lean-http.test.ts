/** The lean HTTP client (backend/lean-http.ts) against real HTTP and HTTPS servers on loopback. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { BackendError } from '../../src/backend/errors.js';
import { LeanHttp, type LeanHttpOptions } from '../../src/backend/lean-http.js';
import { tempDir } from '../support/env.js';
import { makeCerts } from '../support/tls.js';

const DATA = randomBytes(3 << 20);

/** Serves DATA: `/range` answers Range requests with 206 in small pieces; other paths misbehave on purpose. */
function handler(req: http.IncomingMessage, res: http.ServerResponse): void {
  const m = /^bytes=(\d+)-(\d+)$/.exec(String(req.headers.range ?? ''));
  const from = m ? Number(m[1]) : 0;
  const to = m ? Number(m[2]) + 1 : DATA.length;
  const body = DATA.subarray(from, to);
  switch (req.url) {
    case '/range': {
      res.writeHead(206, { 'content-length': body.length, 'content-range': `bytes ${from}-${to - 1}/${DATA.length}` });
      // in pieces of 1000 bytes, a few at a time: the body spans many socket reads
      let off = 0;
      const more = () => {
        for (let k = 0; k < 20 && off < body.length; k++, off += 1000) res.write(body.subarray(off, off + 1000));
        if (off < body.length) setImmediate(more);
        else res.end();
      };
      more();
      return;
    }
    case '/missing':
      res.writeHead(404, { 'content-type': 'application/xml' });
      res.end('<Error><Code>NoSuchKey</Code></Error>');
      return;
    case '/ignores-range':
      res.writeHead(200, { 'content-length': DATA.length });
      res.end(DATA);
      return;
    case '/chunked':
      res.writeHead(206, { 'transfer-encoding': 'chunked' });
      res.end(body);
      return;
    case '/cut': {
      res.writeHead(206, { 'content-length': body.length });
      res.write(body.subarray(0, 5000), () => res.socket?.destroy());
      return;
    }
    case '/stall':
      res.writeHead(206, { 'content-length': body.length });
      res.write(body.subarray(0, 100)); // and then nothing
      return;
    case '/close-after':
      // answers, then closes the connection a moment later although it said keep-alive
      res.writeHead(206, { 'content-length': body.length });
      res.end(body, () => setTimeout(() => res.socket?.destroy(), 20));
      return;
    default:
      res.writeHead(400);
      res.end();
  }
}

interface Served {
  url: (p: string) => URL;
  connections: number;
  concurrent: number;
  mostConcurrent: number;
  close(): Promise<void>;
}

async function serve(server: http.Server | https.Server, scheme: 'http' | 'https'): Promise<Served> {
  const s: Served = { url: () => new URL('http://x'), connections: 0, concurrent: 0, mostConcurrent: 0, close: async () => undefined };
  const sockets = new Set<Socket>();
  server.on(scheme === 'https' ? 'secureConnection' : 'connection', (sock: Socket) => {
    s.connections++;
    s.concurrent++;
    s.mostConcurrent = Math.max(s.mostConcurrent, s.concurrent);
    sockets.add(sock);
    sock.on('close', () => {
      s.concurrent--;
      sockets.delete(sock);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  s.url = (p) => new URL(`${scheme}://127.0.0.1:${port}${p}`);
  s.close = async () => {
    for (const sock of sockets) sock.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  };
  return s;
}

const rangeHeaders = (u: URL, from: number, length: number) => ({ host: u.host, range: `bytes=${from}-${from + length - 1}` });

/** Runs `fn` with a new client, closed afterwards. */
async function withClient(opts: LeanHttpOptions, fn: (g: LeanHttp) => Promise<void>): Promise<void> {
  const g = new LeanHttp(opts);
  try {
    await fn(g);
  } finally {
    g.close();
  }
}

describe('LeanHttp: ranged GETs', () => {
  let srv: Served;
  before(async () => {
    srv = await serve(http.createServer({ keepAliveTimeout: 60_000 }, handler), 'http');
  });
  after(async () => {
    await srv.close();
  });

  it('reads a range that spans many socket reads into the caller’s buffer, and reuses the connection', async () => {
    await withClient({ maxSockets: 4, idleMs: 5000 }, async (g) => {
      const before = srv.connections;
      const into = Buffer.alloc(2 << 20);
      for (const [from, length] of [[0, 1 << 20], [12345, 2 << 20], [(3 << 20) - 7, 7]] as const) {
        const u = srv.url('/range');
        const r = await g.getRange(u, rangeHeaders(u, from, length), length, { into, what: 'obj' });
        assert.ok(r.ok);
        assert.equal(r.data.buffer, into.buffer, 'read into the given buffer');
        assert.ok(r.data.equals(DATA.subarray(from, from + length)));
      }
      assert.equal(srv.connections - before, 1, 'one keep-alive connection for three requests');
      // without a large enough buffer of its own, a new one is made
      const u = srv.url('/range');
      const r = await g.getRange(u, rangeHeaders(u, 10, 1000), 1000, { into: Buffer.alloc(10), what: 'obj' });
      assert.ok(r.ok && r.data.equals(DATA.subarray(10, 1010)));
    });
  });

  it('reports any other answer as not ok (error status, Range ignored, chunked body) and recovers', async () => {
    await withClient({ maxSockets: 2, idleMs: 5000 }, async (g) => {
      for (const [p, status] of [['/missing', 404], ['/ignores-range', 200], ['/chunked', 206]] as const) {
        const u = srv.url(p);
        assert.deepEqual(await g.getRange(u, rangeHeaders(u, 0, 100), 100, { what: 'obj' }), { ok: false, status });
      }
      const u = srv.url('/range');
      const r = await g.getRange(u, rangeHeaders(u, 0, 100), 100, { what: 'obj' });
      assert.ok(r.ok && r.data.equals(DATA.subarray(0, 100)));
    });
  });

  it('a body cut short or a stalled one is a retryable BackendError naming the object and the bytes received', async () => {
    await withClient({ maxSockets: 2, idleMs: 300 }, async (g) => {
      let u = srv.url('/cut');
      await assert.rejects(g.getRange(u, rangeHeaders(u, 0, 100_000), 100_000, { what: 'data/ab/abcd' }), (e: unknown) => {
        assert.ok(e instanceof BackendError);
        assert.equal(e.retryable, true);
        assert.match(e.message, /^data\/ab\/abcd: connection failed after \d+ bytes of the body/);
        return true;
      });
      u = srv.url('/stall');
      await assert.rejects(g.getRange(u, rangeHeaders(u, 0, 100_000), 100_000, { what: 'obj' }), (e: unknown) => {
        assert.ok(e instanceof BackendError && e.retryable);
        assert.match(e.message, /after 100 bytes of the body: no data for 300 ms/);
        return true;
      });
    });
  });

  it('a kept-alive connection the server closed meanwhile is replaced without an error', async () => {
    await withClient({ maxSockets: 1, idleMs: 5000 }, async (g) => {
      const u = srv.url('/close-after');
      for (let i = 0; i < 3; i++) {
        const r = await g.getRange(u, rangeHeaders(u, i, 50), 50, { what: 'obj' });
        assert.ok(r.ok && r.data.equals(DATA.subarray(i, i + 50)));
        // the server's close lands while the connection is idle, or races the next request
        if (i === 1) await new Promise((r) => setTimeout(r, 50));
      }
    });
  });

  it('opens at most maxSockets connections; further requests wait for one', async () => {
    const s2 = await serve(http.createServer({ keepAliveTimeout: 60_000 }, handler), 'http');
    const g = new LeanHttp({ maxSockets: 2, idleMs: 5000 });
    try {
      const u = s2.url('/range');
      const results = await Promise.all(Array.from({ length: 7 }, (_, i) => g.getRange(u, rangeHeaders(u, i * 1000, 100_000), 100_000, { what: 'obj' })));
      results.forEach((r, i) => assert.ok(r.ok && r.data.equals(DATA.subarray(i * 1000, i * 1000 + 100_000))));
      assert.equal(s2.mostConcurrent, 2);
    } finally {
      g.close();
      await s2.close();
    }
  });

  it('idle connections do not keep a process alive', async () => {
    // the child reads a range and must then exit on its own (the server here stays up)
    const mod = pathToFileURL(path.join(path.dirname(fileURLToPath(import.meta.url)), '../../src/backend/lean-http.js')).href;
    const u = srv.url('/range');
    const script = `
      const { LeanHttp } = await import(${JSON.stringify(mod)});
      const g = new LeanHttp({ maxSockets: 2, idleMs: 5000 });
      const u = new URL(${JSON.stringify(u.href)});
      const r = await g.getRange(u, { host: u.host, range: 'bytes=0-99' }, 100, { what: 'obj' });
      process.stdout.write(String(r.ok && r.data.length));
    `;
    // (asynchronously: the server answering it lives in this process)
    const r = await new Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }>((resolve) => {
      const child = execFile(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 }, (_e, stdout, stderr) =>
        resolve({ code: child.exitCode, signal: child.signalCode, stdout, stderr }),
      );
    });
    assert.equal(r.signal, null, 'exited by itself');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '100');
  });

  it('https: verifies the server against the given CA; a refused certificate is not retryable', async () => {
    const t = tempDir('cairn-lean-http-tls-');
    const certs = makeCerts(t.dir);
    const s = await serve(https.createServer({ key: certs.key, cert: certs.cert, keepAliveTimeout: 60_000 }, handler), 'https');
    try {
      const u = s.url('/range');
      const trusted = new LeanHttp({ maxSockets: 2, idleMs: 5000, tls: { ca: certs.caPem } });
      const r = await trusted.getRange(u, rangeHeaders(u, 77, 300_000), 300_000, { what: 'obj' });
      assert.ok(r.ok && r.data.equals(DATA.subarray(77, 300_077)));
      trusted.close();
      const untrusted = new LeanHttp({ maxSockets: 2, idleMs: 5000 });
      await assert.rejects(untrusted.getRange(u, rangeHeaders(u, 0, 10), 10, { what: 'obj' }), (e: unknown) => {
        assert.ok(e instanceof BackendError);
        assert.equal(e.retryable, false);
        assert.match(e.message, /certificate/i);
        return true;
      });
      untrusted.close();
      const insecure = new LeanHttp({ maxSockets: 2, idleMs: 5000, tls: { rejectUnauthorized: false } });
      assert.ok((await insecure.getRange(u, rangeHeaders(u, 0, 10), 10, { what: 'obj' })).ok);
      insecure.close();
    } finally {
      await s.close();
      t.cleanup();
    }
  });
});

describe('LeanHttp: requests with a body', () => {
  let srv: Served;
  const seen: Array<{ method: string; url: string; bytes: number; sha: string }> = [];
  before(async () => {
    srv = await serve(
      http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
        if (req.url === '/forbidden') {
          // answers at once, without reading the body
          const xml = '<?xml version="1.0"?><Error><Code>AccessDenied</Code><Message>no</Message></Error>';
          res.writeHead(403, { 'content-type': 'application/xml', 'content-length': xml.length, 'x-amz-request-id': 'r1' });
          res.end(xml);
          return;
        }
        const h = createHash('sha256');
        let bytes = 0;
        req.on('data', (c: Buffer) => {
          h.update(c);
          bytes += c.length;
        });
        req.on('end', () => {
          const sha = h.digest('hex');
          seen.push({ method: req.method!, url: req.url!, bytes, sha });
          if (req.url === '/exists') {
            const xml = '<Error><Code>PreconditionFailed</Code></Error>';
            res.writeHead(412, { 'content-type': 'application/xml', 'content-length': xml.length });
            res.end(xml);
          } else if (req.url === '/chunked-answer') {
            res.writeHead(200, { 'transfer-encoding': 'chunked' });
            res.end('x'.repeat(100));
          } else {
            res.writeHead(200, { etag: `"${sha}"`, 'content-length': 0 });
            res.end();
          }
        });
      }),
      'http',
    );
  });
  after(async () => {
    await srv.close();
  });

  const body = (n: number) => () => Readable.from((function* () {
    for (let off = 0; off < n; off += 256 * 1024) yield DATA.subarray(off, Math.min(n, off + 256 * 1024));
  })());

  it('sends the body as it is read and returns the answer; the connection is reused', async () => {
    await withClient({ maxSockets: 2, idleMs: 5000 }, async (g) => {
      const before = srv.connections;
      for (const n of [DATA.length, 0, 12345]) {
        const u = srv.url('/obj');
        const r = await g.send('PUT', u, { host: u.host, 'content-length': String(n) }, body(n), 'obj');
        assert.equal(r.status, 200);
        assert.equal(r.headers.etag, `"${createHash('sha256').update(DATA.subarray(0, n)).digest('hex')}"`);
        assert.deepEqual(seen.at(-1), { method: 'PUT', url: '/obj', bytes: n, sha: createHash('sha256').update(DATA.subarray(0, n)).digest('hex') });
      }
      assert.equal(srv.connections - before, 1);
    });
  });

  it('returns error answers with their headers and body, also one that comes before the body is sent', async () => {
    await withClient({ maxSockets: 2, idleMs: 5000 }, async (g) => {
      let u = srv.url('/exists');
      let r = await g.send('PUT', u, { host: u.host, 'content-length': '1000' }, body(1000), 'obj');
      assert.equal(r.status, 412);
      assert.match(r.body.toString(), /PreconditionFailed/);
      u = srv.url('/forbidden');
      r = await g.send('PUT', u, { host: u.host, 'content-length': String(DATA.length) }, body(DATA.length), 'obj');
      assert.equal(r.status, 403);
      assert.equal(r.headers['x-amz-request-id'], 'r1');
      assert.match(r.body.toString(), /AccessDenied/);
      // an answer whose body this client does not read (chunked) keeps its status and headers
      u = srv.url('/chunked-answer');
      r = await g.send('PUT', u, { host: u.host, 'content-length': '10' }, body(10), 'obj');
      assert.equal(r.status, 200);
      // and the client goes on working
      u = srv.url('/obj');
      assert.equal((await g.send('PUT', u, { host: u.host, 'content-length': '10' }, body(10), 'obj')).status, 200);
    });
  });

  it('a body that fails to read fails the request, marked as a read error and not retryable', async () => {
    await withClient({ maxSockets: 2, idleMs: 5000 }, async (g) => {
      const u = srv.url('/obj');
      const failing = () =>
        Readable.from((async function* () {
          yield DATA.subarray(0, 1000);
          throw Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO' });
        })());
      await assert.rejects(g.send('PUT', u, { host: u.host, 'content-length': '5000' }, failing, 'data/ab/x'), (e: unknown) => {
        assert.ok(e instanceof BackendError);
        assert.equal(e.retryable, false);
        const cause = e.cause as { bodyRead?: boolean; cause?: { code?: string } };
        assert.equal(cause.bodyRead, true);
        assert.equal(cause.cause?.code, 'EIO');
        return true;
      });
    });
  });
});
