import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as net from 'node:net';
import { isCairnError } from '../../core/errors.js';
import { createObservability, parseListenAddress } from './index.js';

function get(port: number, path: string, method = 'GET'): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('parseListenAddress: Go-style forms', () => {
  assert.deepEqual(parseListenAddress(':8085'), { host: undefined, port: 8085 });
  assert.deepEqual(parseListenAddress('8085'), { host: undefined, port: 8085 });
  assert.deepEqual(parseListenAddress('0.0.0.0:8085'), { host: '0.0.0.0', port: 8085 });
  assert.deepEqual(parseListenAddress('localhost:0'), { host: 'localhost', port: 0 });
  assert.deepEqual(parseListenAddress('[::1]:9000'), { host: '::1', port: 9000 });
  assert.deepEqual(parseListenAddress('[::]:8085'), { host: '::', port: 8085 });
  for (const bad of ['', 'host', ':http', ':65536', ':-1', '::1:8085', 'host:80:80', '[::1]']) {
    assert.throws(() => parseListenAddress(bad), (e) => isCairnError(e, 'INVALID_ARGUMENT'), bad);
  }
});

test('/healthz, /readyz (following the state), /metrics, 404 and 405', async () => {
  const state = { ready: false, reason: 'caches not synced yet' as string | undefined };
  const obs = await createObservability({ node: 'worker-1', address: '127.0.0.1:0', state, defaultMetrics: false });
  try {
    assert.ok(obs.port > 0);
    assert.equal((await get(obs.port, '/healthz')).status, 200);

    let r = await get(obs.port, '/readyz');
    assert.equal(r.status, 503);
    assert.equal(r.body, 'caches not synced yet\n');
    state.reason = undefined;
    assert.equal((await get(obs.port, '/readyz')).body, 'not ready\n');
    state.ready = true;
    r = await get(obs.port, '/readyz');
    assert.equal(r.status, 200);
    assert.equal(r.body, 'ok\n');

    obs.metrics.podVolumeBackupEnqueued();
    r = await get(obs.port, '/metrics?x=1');
    assert.equal(r.status, 200);
    assert.match(String(r.headers['content-type']), /^text\/plain; version=0\.0\.4/);
    assert.match(r.body, /^podVolume_pod_volume_backup_enqueue_count\{node="worker-1"\} 1$/m);
    assert.match(r.body, /^cairn_agent_ready\{node="worker-1"\} 1$/m);

    const head = await get(obs.port, '/metrics', 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(head.body, '');
    assert.equal((await get(obs.port, '/')).status, 404);
    const post = await get(obs.port, '/metrics', 'POST');
    assert.equal(post.status, 405);
    assert.equal(post.headers.allow, 'GET, HEAD');
  } finally {
    await obs.close();
  }
});

test('readiness given as methods (ready()/reason()); a throwing check reads as not ready', async () => {
  let mode: 'ok' | 'down' | 'throw' = 'down';
  const obs = await createObservability({
    node: 'n',
    address: '127.0.0.1:0',
    defaultMetrics: false,
    state: {
      ready: () => {
        if (mode === 'throw') throw new Error('state unavailable');
        return mode === 'ok';
      },
      reason: () => 'host pods directory does not match kubelet: missing 2 pod directories',
    },
  });
  try {
    const r = await get(obs.port, '/readyz');
    assert.equal(r.status, 503);
    assert.match(r.body, /missing 2 pod directories/);
    mode = 'throw';
    assert.match((await get(obs.port, '/readyz')).body, /readiness check failed: state unavailable/);
    mode = 'ok';
    assert.equal((await get(obs.port, '/readyz')).status, 200);
  } finally {
    await obs.close();
  }
});

test('close() returns promptly although a scraper keeps its connection alive; a busy port is a clear error', async () => {
  const obs = await createObservability({ node: 'n', address: '127.0.0.1:0', state: { ready: true }, defaultMetrics: false });
  const keepAlive = new http.Agent({ keepAlive: true });
  await new Promise<void>((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: obs.port, path: '/metrics', agent: keepAlive }, (res) => {
      res.resume();
      res.on('end', resolve);
    }).on('error', reject);
  });
  const started = Date.now();
  await obs.close();
  await obs.close(); // idempotent
  assert.ok(Date.now() - started < 2_000);
  keepAlive.destroy();

  const blocker = net.createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  const port = (blocker.address() as net.AddressInfo).port;
  try {
    await assert.rejects(
      createObservability({ node: 'n', address: `127.0.0.1:${port}`, state: { ready: true }, defaultMetrics: false }),
      (e) => isCairnError(e) && /address already in use/.test(e.message),
    );
  } finally {
    await new Promise<void>((resolve) => blocker.close(() => resolve()));
  }
});
