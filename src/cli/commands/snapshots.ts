import type { Command } from 'commander';
import { openRepository, listSnapshotsFiltered } from '../../engine/index.js';
import { out, repoAccess, type GlobalOptions } from '../context.js';

function collect(v: string, prev: string[] = []): string[] {
  return [...prev, v];
}

export function register(program: Command, g: () => GlobalOptions): void {
  program
    .command('snapshots')
    .description('list all snapshots')
    .argument('[ids...]', 'only these snapshots (ID prefixes)')
    .option('-H, --host <host>', 'only snapshots for this host (repeatable)', collect, [])
    .option('--path <path>', 'only snapshots including this path (repeatable)', collect, [])
    .option('--tag <tags>', 'only snapshots with these tags (comma = all of them; repeatable = any)', collect, [])
    .option('--latest <n>', 'only the last n snapshots of each host and path set')
    .action(async (ids: string[], o: { host: string[]; path: string[]; tag: string[]; latest?: string }) => {
      const gopts = g();
      const repo = await openRepository(repoAccess(gopts));
      let list = await listSnapshotsFiltered(repo, { hosts: o.host, paths: o.path, tags: o.tag.map((t) => t.split(',')) });
      if (ids.length) list = list.filter((s) => ids.some((i) => s.id.startsWith(i)));
      if (o.latest) {
        const n = Number(o.latest);
        const groups = new Map<string, typeof list>();
        for (const s of list) {
          const k = `${s.snapshot.hostname}\0${[...s.snapshot.paths].sort().join('\0')}`;
          groups.set(k, [...(groups.get(k) ?? []), s]);
        }
        list = [...groups.values()].flatMap((gr) => gr.slice(-n));
      }
      if (gopts.json) {
        out(JSON.stringify(list.map((s) => ({ ...snapshotJson(s.snapshot), id: s.id, short_id: s.id.slice(0, 8) }))));
        return;
      }
      const rows = list.map((s) => [s.id.slice(0, 8), localTime(s.snapshot.time), s.snapshot.hostname ?? '', (s.snapshot.tags ?? []).join(','), s.snapshot.paths.join('\n')]);
      printTable(['ID', 'Time', 'Host', 'Tags', 'Paths'], rows);
      out(`${list.length} snapshots`);
    });
}

function snapshotJson(s: import('../../format/snapshot.js').Snapshot) {
  const o: Record<string, unknown> = { time: s.time };
  if (s.parent) o.parent = s.parent;
  o.tree = s.tree;
  o.paths = s.paths;
  if (s.hostname) o.hostname = s.hostname;
  if (s.username) o.username = s.username;
  if (s.uid) o.uid = s.uid;
  if (s.gid) o.gid = s.gid;
  if (s.excludes?.length) o.excludes = s.excludes;
  if (s.tags?.length) o.tags = s.tags;
  if (s.original) o.original = s.original;
  return o;
}

function localTime(t: string): string {
  const d = new Date(t);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

export function printTable(header: string[], rows: string[][]): void {
  const expanded: string[][] = [];
  for (const r of rows) {
    const lines = r.map((c) => c.split('\n'));
    const h = Math.max(...lines.map((l) => l.length));
    for (let i = 0; i < h; i++) expanded.push(lines.map((l) => l[i] ?? ''));
  }
  const widths = header.map((h, i) => Math.max(h.length, ...expanded.map((r) => r[i]!.length)));
  const fmt = (r: string[]) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  out(fmt(header));
  out('-'.repeat(widths.reduce((a, b) => a + b + 2, -2)));
  for (const r of expanded) out(fmt(r));
  out('-'.repeat(widths.reduce((a, b) => a + b + 2, -2)));
}
