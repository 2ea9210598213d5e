/** cairn and restic against restic's REST protocol (rclone serve restic), directly and through the fault proxy. */
import { hasRclone, startRclone } from '../support/rclone.js';
import { backendE2E } from './backend-e2e.js';

backendE2E({
  name: 'rest (rclone serve restic)',
  skip: !hasRclone && !process.env.CI ? 'rclone not installed (apt-get install rclone)' : false,
  writeMethod: 'POST',
  async start() {
    const server = await startRclone({ user: 'cairn', pass: 'rest-secret' });
    return {
      repo: (name, via) => `rest:http://cairn:rest-secret@${(via ?? server.url).replace(/^http:\/\//, '')}/${name}`,
      target: { host: '127.0.0.1', port: server.port },
      env: {},
      stop: () => server.stop(),
    };
  },
});
