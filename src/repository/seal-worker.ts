/** Worker thread: compresses (v2) and encrypts blobs off the main thread. One task = one blob. */
import { parentPort, workerData } from 'node:worker_threads';
import { native } from '../native/index.js';
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
const key = native.sealKey(wd.encrypt, wd.macK, wd.macR);

/** True when the view starts its own ArrayBuffer (sealBlob's output), so the buffer can be transferred, not copied. */
function transferable(b: Uint8Array): boolean {
  return b.byteOffset === 0 && b.buffer instanceof ArrayBuffer;
}

parentPort!.on('message', (m: { id: number; req: SealRequest }) => {
  try {
    const result = sealBlob(key, m.req.data, m.req.compress, wd.level);
    const msg = { id: m.id, ok: true, result };
    if (!transferable(result.sealed)) {
      parentPort!.postMessage(msg);
      return;
    }
    try {
      parentPort!.postMessage(msg, [result.sealed.buffer as ArrayBuffer]);
    } catch {
      // Memory the addon allocated cannot be transferred: send a copy instead.
      parentPort!.postMessage(msg);
    }
  } catch (e) {
    const err = e as { message?: string; code?: string };
    parentPort!.postMessage({ id: m.id, ok: false, error: { message: err.message ?? String(e), code: err.code } });
  }
});
