/** Worker thread: compresses (v2) and encrypts blobs off the main thread. One task = one blob. */
import { parentPort, workerData } from 'node:worker_threads';
import { Sealer } from '../crypto/seal.js';
import { sealBlob } from './seal-blob.js';

export interface SealRequest {
  data: Uint8Array;
  compress: boolean;
}

export interface SealWorkerData {
  encrypt: Uint8Array;
  macK: Uint8Array;
  macR: Uint8Array;
  level: number;
}

const wd = workerData as SealWorkerData;
const sealer = new Sealer({ encrypt: Buffer.from(wd.encrypt), macK: Buffer.from(wd.macK), macR: Buffer.from(wd.macR) });

parentPort!.on('message', (m: { id: number; req: SealRequest }) => {
  try {
    const result = sealBlob(sealer, m.req.data, m.req.compress, wd.level);
    parentPort!.postMessage({ id: m.id, ok: true, result }, [result.sealed.buffer as ArrayBuffer]);
  } catch (e) {
    const err = e as { message?: string; code?: string };
    parentPort!.postMessage({ id: m.id, ok: false, error: { message: err.message ?? String(e), code: err.code } });
  }
});
