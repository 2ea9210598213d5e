import type { Logger } from '../../core/logger.js';
import type { Backend } from '../backend.js';
import { RestBackend, type RestConfig } from './rest.js';

export type { RestConfig } from './rest.js';

/** Opens a restic REST-protocol backend (rest-server, `rclone serve restic`) from an explicit configuration. */
export function openRestBackend(cfg: RestConfig, opts: { logger?: Logger } = {}): Backend {
  return new RestBackend(cfg, opts);
}
