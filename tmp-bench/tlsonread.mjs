import tls from 'node:tls';
import { execSync } from 'node:child_process';
execSync('openssl req -x509 -newkey rsa:2048 -nodes -keyout /tmp/k.pem -out /tmp/c.pem -days 1 -subj /CN=localhost 2>/dev/null');
const fs = await import('node:fs');
const srv = tls.createServer({ key: fs.readFileSync('/tmp/k.pem'), cert: fs.readFileSync('/tmp/c.pem') }, (s) => { s.end(Buffer.alloc(100000, 1)); });
srv.listen(0, '127.0.0.1', () => {
  let total = 0, calls = 0; const buf = Buffer.alloc(8192);
  const c = tls.connect({ port: srv.address().port, host: '127.0.0.1', rejectUnauthorized: false, onread: { buffer: buf, callback: (n) => { total += n; calls++; } } });
  c.on('data', (d) => console.log('data event (onread not used)', d.length));
  c.on('end', () => { console.log('onread total', total, 'calls', calls); srv.close(); });
});
