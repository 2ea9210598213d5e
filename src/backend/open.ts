import * as path from 'node:path';
import { CairnError } from '../core/errors.js';
import type { Backend } from './backend.js';
import { LocalBackend } from './local.js';

export const ACCEPTED_FORMS = [
  '/path/to/repo or local:/path/to/repo',
];

/**
 * Opens a backend from a restic-style repository identifier. The identifier is never echoed in
 * errors verbatim, because it may carry credentials (rest:https://user:pass@host/...).
 */
export function openBackend(repo: string): Backend {
  if (!repo) throw new CairnError('INVALID_ARGUMENT', 'no repository given: use -r/--repo or RESTIC_REPOSITORY');
  const m = /^([a-z0-9]+):/.exec(repo);
  if (m && m[1] !== 'local' && !/^[a-zA-Z]:[\\/]/.test(repo)) {
    throw new CairnError(
      'UNSUPPORTED',
      `unsupported repository type "${m[1]}": accepted forms are ${ACCEPTED_FORMS.join('; ')}`,
    );
  }
  const p = repo.startsWith('local:') ? repo.slice('local:'.length) : repo;
  return new LocalBackend(path.resolve(p));
}
