/** cairn and restic against Ceph RGW (S3), directly and through the fault proxy. */
import { hasCeph, startCeph } from '../support/ceph.js';
import { backendE2E } from './backend-e2e.js';

backendE2E({
  name: 's3 (Ceph RGW)',
  skip: !hasCeph && !process.env.CI ? 'Ceph RGW not installed (apt-get install radosgw ceph-mon ceph-osd)' : false,
  writeMethod: 'PUT',
  async start() {
    const ceph = await startCeph();
    await ceph.createBucket('e2e');
    return {
      // the proxy forwards the Host header unchanged, so signatures made for it stay valid
      repo: (name, via) => `s3:${via ?? ceph.endpoint}/e2e/${name}`,
      target: { host: '127.0.0.1', port: ceph.port },
      env: ceph.env,
      stop: () => ceph.stop(),
    };
  },
});
