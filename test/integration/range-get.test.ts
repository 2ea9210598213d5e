/** The lean ranged-GET client (backend/range-get.ts) against real HTTP and HTTPS servers on loopback. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { BackendError } from '../../src/backend/errors.js';
import { RangeGetter } from '../../src/backend/range-get.js';
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

describe('RangeGetter (lean ranged GETs)', () => {
  let srv: Served;
  before(async () => {
    srv = await serve(http.createServer({ keepAliveTimeout: 60_000 }, handler), 'http');
  });
  after(async () => {
    await srv.close();
  });

  it('reads a range that spans many socket reads into the caller’s buffer, and reuses the connection', async () => {
    const g = new RangeGetter({ maxSockets: 4, idleMs: 5000 });
    try {
      const before = srv.connections;
      const into = Buffer.alloc(2 << 20);
      for (const [from, length] of [[0, 1 << 20], [12345, 2 << 20], [(3 << 20) - 7, 7]] as const) {
        const u = srv.url('/range');
        const r = await g.get(u, rangeHeaders(u, from, length), length, { into, what: 'obj' });
        assert.ok(r.ok);
        assert.equal(r.data.buffer, into.buffer, 'read into the given buffer');
        assert.ok(r.data.equals(DATA.subarray(from, from + length)));
      }
      assert.equal(srv.connections - before, 1, 'one keep-alive connection for three requests');
      // without a large enough buffer of its own, a new one is made
      const u = srv.url('/range');
      const r = await g.get(u, rangeHeaders(u, 10, 1000), 1000, { into: Buffer.alloc(10), what: 'obj' });
      assert.ok(r.ok && r.data.equals(DATA.subarray(10, 1010)));
    } finally {
      g.close();
    }
  });

  it('reports any other answer as not ok (error status, Range ignored, chunked body) and recovers', async () => {
    const g = new RangeGetter({ maxSockets: 2, idleMs: 5000 });
    try {
      for (const [p, status] of [['/missing', 404], ['/ignores-range', 200], ['/chunked', 206]] as const) {
        const u = srv.url(p);
        assert.deepEqual(await g.get(u, rangeHeaders(u, 0, 100), 100, { what: 'obj' }), { ok: false, status });
      }
      const u = srv.url('/range');
      const r = await g.get(u, rangeHeaders(u, 0, 100), 100, { what: 'obj' });
      assert.ok(r.ok && r.data.equals(DATA.subarray(0, 100)));
    } finally {
      g.close();
    }
  });

  it('a body cut short or a stalled one is a retryable BackendError naming the object and the bytes received', async () => {
    const g = new RangeGetter({ maxSockets: 2, idleMs: 300 });
    try {
      let u = srv.url('/cut');
      await assert.rejects(g.get(u, rangeHeaders(u, 0, 100_000), 100_000, { what: 'data/ab/abcd' }), (e: unknown) => {
        assert.ok(e instanceof BackendError);
        assert.equal(e.retryable, true);
        assert.match(e.message, /^data\/ab\/abcd: connection failed after \d+ bytes of the body/);
        return true;
      });
      u = srv.url('/stall');
      await assert.rejects(g.get(u, rangeHeaders(u, 0, 100_000), 100_000, { what: 'obj' }), (e: unknown) => {
        assert.ok(e instanceof BackendError && e.retryable);
        assert.match(e.message, /after 100 bytes of the body: no data for 300 ms/);
        return true;
      });
    } finally {
      g.close();
    }
  });

  it('a kept-alive connection the server closed meanwhile is replaced without an error', async () => {
    const g = new RangeGetter({ maxSockets: 1, idleMs: 5000 });
    try {
      const u = srv.url('/close-after');
      for (let i = 0; i < 3; i++) {
        const r = await g.get(u, rangeHeaders(u, i, 50), 50, { what: 'obj' });
        assert.ok(r.ok && r.data.equals(DATA.subarray(i, i + 50)));
        // the server's close lands while the connection is idle, or races the next request
        if (i === 1) await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      g.close();
    }
  });

  it('opens at most maxSockets connections; further requests wait for one', async () => {
    const s2 = await serve(http.createServer({ keepAliveTimeout: 60_000 }, handler), 'http');
    const g = new RangeGetter({ maxSockets: 2, idleMs: 5000 });
    try {
      const u = s2.url('/range');
      const results = await Promise.all(Array.from({ length: 7 }, (_, i) => g.get(u, rangeHeaders(u, i * 1000, 100_000), 100_000, { what: 'obj' })));
      results.forEach((r, i) => assert.ok(r.ok && r.data.equals(DATA.subarray(i * 1000, i * 1000 + 100_000))));
      assert.equal(s2.mostConcurrent, 2);
    } finally {
      g.close();
      await s2.close();
    }
  });

  it('idle connections do not keep a process alive', async () => {
    // the child reads a range and must then exit on its own (the server here stays up)
    const mod = pathToFileURL(path.join(path.dirname(fileURLToPath(import.meta.url)), '../../src/backend/range-get.js')).href;
    const u = srv.url('/range');
    const script = `
      const { RangeGetter } = await import(${JSON.stringify(mod)});
      const g = new RangeGetter({ maxSockets: 2, idleMs: 5000 });
      const u = new URL(${JSON.stringify(u.href)});
      const r = await g.get(u, { host: u.host, range: 'bytes=0-99' }, 100, { what: 'obj' });
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
    const t = tempDir('cairn-range-get-tls-');
    const certs = makeCerts(t.dir);
    const s = await serve(https.createServer({ key: certs.key, cert: certs.cert, keepAliveTimeout: 60_000 }, handler), 'https');
    try {
      const u = s.url('/range');
      const trusted = new RangeGetter({ maxSockets: 2, idleMs: 5000, tls: { ca: certs.caPem } });
      const r = await trusted.get(u, rangeHeaders(u, 77, 300_000), 300_000, { what: 'obj' });
      assert.ok(r.ok && r.data.equals(DATA.subarray(77, 300_077)));
      trusted.close();
      const untrusted = new RangeGetter({ maxSockets: 2, idleMs: 5000 });
      await assert.rejects(untrusted.get(u, rangeHeaders(u, 0, 10), 10, { what: 'obj' }), (e: unknown) => {
        assert.ok(e instanceof BackendError);
        assert.equal(e.retryable, false);
        assert.match(e.message, /certificate/i);
        return true;
      });
      untrusted.close();
      const insecure = new RangeGetter({ maxSockets: 2, idleMs: 5000, tls: { rejectUnauthorized: false } });
      assert.ok((await insecure.get(u, rangeHeaders(u, 0, 10), 10, { what: 'obj' })).ok);
      insecure.close();
    } finally {
      await s.close();
      t.cleanup();
    }
  });
});
