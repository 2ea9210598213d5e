import { CairnError } from '../core/errors.js';
import { isId } from '../core/ids.js';
import type { FileHandle, FileType } from './backend.js';

/**
 * restic's "default" layout, shared by every object store: `config`, `keys/<id>`,
 * `snapshots/<id>`, `index/<id>`, `locks/<id>` and `data/<first two hex digits>/<id>`, all below
 * an optional prefix. (The REST protocol names packs `data/<id>` on the wire; the server keeps the
 * two-digit folders itself.)
 */
export const TYPE_DIRS: Record<FileType, string> = {
  config: 'config',
  key: 'keys',
  snapshot: 'snapshots',
  index: 'index',
  lock: 'locks',
  pack: 'data',
};

/** Throws INVALID_ARGUMENT unless the handle names a config or an ID (nothing else is ever stored). */
export function checkHandle(h: FileHandle): void {
  if (h.type === 'config') return;
  if (!isId(h.name)) throw new CairnError('INVALID_ARGUMENT', `invalid file name ${JSON.stringify(h.name)} for ${h.type}`);
}

/** Normalises a prefix: no leading, trailing or doubled slashes; "" for the bucket root. */
export function normalizePrefix(p: string): string {
  return p.split('/').filter((s) => s !== '').join('/');
}

/** The object key of a file in the default layout, below `prefix` (already normalised). */
export function objectKey(prefix: string, h: FileHandle): string {
  checkHandle(h);
  let rel: string;
  if (h.type === 'config') rel = 'config';
  else if (h.type === 'pack') rel = `data/${h.name.slice(0, 2)}/${h.name}`;
  else rel = `${TYPE_DIRS[h.type]}/${h.name}`;
  return prefix ? `${prefix}/${rel}` : rel;
}

/** The key prefix under which files of a type are listed (recursively for packs), ending in "/". */
export function listPrefix(prefix: string, type: Exclude<FileType, 'config'>): string {
  const rel = `${TYPE_DIRS[type]}/`;
  return prefix ? `${prefix}/${rel}` : rel;
}

/** The file name at the end of an object key (what list returns), or undefined when it is not an ID. */
export function nameFromKey(key: string): string | undefined {
  const name = key.slice(key.lastIndexOf('/') + 1);
  return isId(name) ? name : undefined;
}
