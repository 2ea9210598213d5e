/** Text output of the `cairn k8s` commands: kubectl-style columns, sizes, durations, times. */
import { formatBytes, out } from '../context.js';

/** Columns separated by three spaces, like kubectl. Empty cells print as `-`? No: as they are (blank), except the first. */
export function columns(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const fmt = (r: string[]) => r.map((c, i) => (c ?? '').padEnd(widths[i]!)).join('   ').trimEnd();
  out(fmt(header));
  for (const r of rows) out(fmt(r));
}

export function size(n: number | undefined): string {
  return n === undefined ? '' : formatBytes(n);
}

export function duration(ms: number | undefined): string {
  if (ms === undefined) return '';
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  return `${h}h${String(m % 60).padStart(2, '0')}m`;
}

/** RFC 3339 (UTC) → `2026-01-02 15:04:05` in local time; blank when absent. */
export function when(t: string | undefined): string {
  if (!t) return '';
  const d = new Date(t);
  if (Number.isNaN(d.getTime())) return t;
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** One line per message, shortened for tables. */
export function oneLine(s: string | undefined, max = 80): string {
  if (!s) return '';
  const l = s.replace(/\s+/g, ' ').trim();
  return l.length > max ? l.slice(0, max - 1) + '…' : l;
}
