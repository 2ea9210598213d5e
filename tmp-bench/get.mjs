import { S3Client, GetObjectCommand, PutObjectCommand, CreateBucketCommand } from '@aws-sdk/client-s3';
import { SignatureV4 } from '@smithy/signature-v4';
import { createHash, createHmac } from 'node:crypto';
class Sha256 { constructor(secret) { this.h = secret ? createHmac('sha256', secret) : createHash('sha256'); } update(d) { this.h.update(d); } async digest() { return new Uint8Array(this.h.digest()); } }
import http from 'node:http';
import net from 'node:net';
const ep = 'http://127.0.0.1:7490';
const creds = { accessKeyId: 'testaccess', secretAccessKey: 'testsecret' };
const c = new S3Client({ endpoint: ep, region: 'us-east-1', forcePathStyle: true, credentials: creds });
await c.send(new CreateBucketCommand({ Bucket: 'getb' })).catch(() => {});
const obj = Buffer.alloc(64 << 20, 7);
await c.send(new PutObjectCommand({ Bucket: 'getb', Key: 'o', Body: obj }));
const N = 128, R = 4 << 20;
const into = Buffer.allocUnsafe(R);
function cpu() { const u = process.cpuUsage(); return (u.user + u.system) / 1e6; }
async function sdk(i) {
  const off = (i * R) % (60 << 20);
  const out = await c.send(new GetObjectCommand({ Bucket: 'getb', Key: 'o', Range: `bytes=${off}-${off + R - 1}` }));
  let got = 0; for await (const ch of out.Body) { into.set(ch, got); got += ch.length; }
  if (got !== R) throw new Error('short');
}
const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
const signer = new SignatureV4({ credentials: creds, region: 'us-east-1', service: 's3', sha256: Sha256 });
async function signed(off) {
  const req = { method: 'GET', protocol: 'http:', hostname: '127.0.0.1', port: 7490, path: '/getb/o', headers: { host: '127.0.0.1:7490', range: `bytes=${off}-${off + R - 1}`, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' } };
  return signer.sign(req);
}
async function raw(i) {
  const off = (i * R) % (60 << 20);
  const s = await signed(off);
  await new Promise((res, rej) => {
    http.get({ host: '127.0.0.1', port: 7490, path: '/getb/o', headers: s.headers, agent }, (r) => {
      let got = 0; r.on('data', (ch) => { into.set(ch, got); got += ch.length; }); r.on('end', () => got === R ? res() : rej(new Error('short ' + got + ' ' + r.statusCode)));
    }).on('error', rej);
  });
}
for (const [name, fn] of [['sdk', sdk], ['raw-http', raw], ['sdk', sdk], ['raw-http', raw]]) {
  const t0 = performance.now(), c0 = cpu();
  for (let i = 0; i < N; i += 4) await Promise.all([fn(i), fn(i + 1), fn(i + 2), fn(i + 3)]);
  const ms = performance.now() - t0, cs = cpu() - c0;
  console.log(name, (N * R / 2 ** 20 / (ms / 1000)).toFixed(0), 'MiB/s wall', (cs / (N * R / 2 ** 30)).toFixed(2), 'cpu s/GiB');
}

// net.Socket with onread into a fixed buffer: minimal HTTP/1.1 (Content-Length bodies only)
function conn() {
  const st = { buf: Buffer.allocUnsafe(256 << 10), cb: null };
  const sock = net.connect({ host: '127.0.0.1', port: 7490, onread: { buffer: () => st.target ?? st.buf, callback: (n, b) => { st.cb?.(n, b); } } });
  sock.setNoDelay(true);
  return new Promise((r) => sock.once('connect', () => { st.sock = sock; r(st); }));
}
const pool = await Promise.all([conn(), conn(), conn(), conn()]);
async function onread(i, st) {
  const off = (i * R) % (60 << 20);
  const s = await signed(off);
  let head = 'GET /getb/o HTTP/1.1\r\n'; for (const [k, v] of Object.entries(s.headers)) head += `${k}: ${v}\r\n`; head += '\r\n';
  await new Promise((res, rej) => {
    let hdr = Buffer.alloc(0), body = -1, got = 0;
    st.cb = (n, b) => {
      if (body < 0) {
        hdr = Buffer.concat([hdr, b.subarray(0, n)]);
        const e = hdr.indexOf('\r\n\r\n'); if (e < 0) return;
        const m = /content-length: *(\d+)/i.exec(hdr.subarray(0, e).toString('latin1')); body = Number(m[1]);
        const rest = hdr.subarray(e + 4); rest.copy(into, 0); got = rest.length;
        st.target = into.subarray(got, body); // next reads go straight into the destination
      } else { got += n; st.target = got < body ? into.subarray(got, body) : null; }
      if (body >= 0 && got >= body) { st.cb = null; st.target = null; res(); }
    };
    st.sock.write(head);
  });
}
for (let k = 0; k < 2; k++) {
  const t0 = performance.now(), c0 = cpu();
  for (let i = 0; i < N; i += 4) await Promise.all(pool.map((st, j) => onread(i + j, st)));
  const ms = performance.now() - t0, cs = cpu() - c0;
  console.log('net-onread', (N * R / 2 ** 20 / (ms / 1000)).toFixed(0), 'MiB/s wall', (cs / (N * R / 2 ** 30)).toFixed(2), 'cpu s/GiB');
}
process.exit(0);
