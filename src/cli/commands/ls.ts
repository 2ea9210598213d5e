import type { Command } from 'commander';
import { openRepository, listTree } from '../../engine/index.js';
import { out, repoAccess, type GlobalOptions } from '../context.js';

export function register(program: Command, g: () => GlobalOptions): void {
  program
    .command('ls')
    .description('list files in a snapshot')
    .argument('<snapshot>', 'snapshot ID, prefix or "latest"')
    .argument('[dir]', 'only list entries below this directory')
    .option('-l, --long', 'long listing (mode, owner, size, time)')
    .option('--recursive', 'with [dir]: list everything below it (default: only its direct entries)')
    .action(async (snapshot: string, dir: string | undefined, o: { long?: boolean; recursive?: boolean }) => {
      const gopts = g();
      const repo = await openRepository(repoAccess(gopts));
      const { snapshot: s, entries } = await listTree(repo, snapshot, dir, dir ? !!o.recursive : true);
      const shown = dir && !o.recursive ? entries.filter((e) => e.path === dir.replace(/\/+$/, '') || e.path.slice(dir.replace(/\/+$/, '').length + 1).indexOf('/') < 0) : entries;
      if (gopts.json) {
        out(JSON.stringify({ struct_type: 'snapshot', message_type: 'snapshot', time: s.snapshot.time, tree: s.snapshot.tree, paths: s.snapshot.paths, hostname: s.snapshot.hostname, id: s.id, short_id: s.id.slice(0, 8) }));
        for (const e of shown) {
          const n = e.node;
          out(JSON.stringify({ name: n.name.toString('utf8'), type: n.type, path: e.path, uid: n.uid, gid: n.gid, size: n.size ?? 0, mode: n.mode, mtime: n.mtime, atime: n.atime, ctime: n.ctime, struct_type: 'node', message_type: 'node' }));
        }
        return;
      }
      if (!gopts.quiet) process.stderr.write(`snapshot ${s.id.slice(0, 8)} of [${s.snapshot.paths.join(' ')}] at ${s.snapshot.time}:\n`);
      for (const e of shown) {
        if (!o.long) {
          out(e.path);
          continue;
        }
        const n = e.node;
        out(`${modeString(n.type, n.mode)} ${String(n.uid).padStart(5)} ${String(n.gid).padStart(5)} ${String(n.size ?? 0).padStart(12)} ${n.mtime.slice(0, 19).replace('T', ' ')} ${e.path}${n.type === 'symlink' ? ' -> ' + (n.linktarget ?? '') : ''}`);
      }
    });
}

function modeString(type: string, mode: number): string {
  const t = { dir: 'd', symlink: 'L', dev: 'D', chardev: 'c', fifo: 'p', socket: 'S' }[type] ?? '-';
  const rwx = 'rwxrwxrwx';
  let s = t;
  for (let i = 0; i < 9; i++) s += mode & (1 << (8 - i)) ? rwx[i] : '-';
  return s;
}
