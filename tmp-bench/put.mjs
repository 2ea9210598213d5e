import { S3Client, PutObjectCommand, CreateBucketCommand } from '@aws-sdk/client-s3';
import { SignatureV4 } from '@smithy/signature-v4';
import { createHash, createHmac } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
class Sha256 { constructor(secret) { this.h = secret ? createHmac('sha256', secret) : createHash('sha256'); } update(d) { this.h.update(d); } async digest() { return new Uint8Array(this.h.digest()); } }
const ep = 'http://127.0.0.1:7490';
const creds = { accessKeyId: 'testaccess', secretAccessKey: 'testsecret' };
const c = new S3Client({ endpoint: ep, region: 'us-east-1', forcePathStyle: true, credentials: creds, requestChecksumCalculation: 'WHEN_REQUIRED' });
await c.send(new CreateBucketCommand({ Bucket: 'putb' })).catch(() => {});
const file = '/dev/shm/put16'; fs.writeFileSync(file, Buffer.alloc(16 << 20, 3));
const N = 32, R = 16 << 20;
function cpu() { const u = process.cpuUsage(); return (u.user + u.system) / 1e6; }
async function sdk(i) {
  await c.send(new PutObjectCommand({ Bucket: 'putb', Key: 'o' + i, Body: fs.createReadStream(file), ContentLength: R }));
}
const signer = new SignatureV4({ credentials: creds, region: 'us-east-1', service: 's3', sha256: Sha256, uriEscapePath: false, applyChecksum: false });
async function raw(i) {
  const s = await signer.sign({ method: 'PUT', protocol: 'http:', hostname: '127.0.0.1', port: 7490, path: '/putb/r' + i, query: {}, headers: { host: '127.0.0.1:7490', 'content-length': String(R), 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' } });
  let head = `PUT /putb/r${i} HTTP/1.1\r\n`; for (const [k, v] of Object.entries(s.headers)) head += `${k}: ${v}\r\n`; head += '\r\n';
  const sock = net.connect({ host: '127.0.0.1', port: 7490 });
  await new Promise((r) => sock.once('connect', r));
  sock.write(head);
  const fd = fs.openSync(file, 'r'); const buf = Buffer.allocUnsafe(1 << 20);
  for (let off = 0; off < R; off += 1 << 20) { fs.readSync(fd, buf, 0, 1 << 20, off); if (!sock.write(buf)) await new Promise((r) => sock.once('drain', r)); }
  fs.closeSync(fd);
  await new Promise((res) => { sock.once('data', (d) => { if (!/^HTTP\/1.1 200/.test(d.toString())) console.log(d.toString().slice(0, 200)); res(); }); });
  sock.destroy();
}
for (const [name, fn] of [['sdk', sdk], ['raw', raw], ['sdk', sdk], ['raw', raw]]) {
  const t0 = performance.now(), c0 = cpu();
  for (let i = 0; i < N; i += 4) await Promise.all([fn(i), fn(i + 1), fn(i + 2), fn(i + 3)]);
  const ms = performance.now() - t0, cs = cpu() - c0;
  console.log(name, (N * R / 2 ** 20 / (ms / 1000)).toFixed(0), 'MiB/s wall', (cs / (N * R / 2 ** 30)).toFixed(2), 'cpu s/GiB');
}
process.exit(0);
