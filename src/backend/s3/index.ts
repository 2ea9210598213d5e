import type { Logger } from '../../core/logger.js';
import type { Backend } from '../backend.js';
import { S3Backend } from './s3.js';
import type { S3Config } from './config.js';

export type { S3Config } from './config.js';
export { isAwsHost, regionFromAwsHost } from './config.js';

/** Opens an S3 (or S3-compatible) backend from an explicit configuration. No request is made until first use. */
export function openS3Backend(cfg: S3Config, opts: { logger?: Logger } = {}): Backend {
  return new S3Backend(cfg, opts);
}
