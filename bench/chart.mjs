#!/usr/bin/env node
// SVG charts of the benchmark results, written by hand (no dependencies).
//
//   node bench/chart.mjs [FILE.json ...]   (default: bench/out/latest.json, scaling-latest.json, index-latest.json)
//
// Writes FILE.svg next to each FILE.json: for run.mjs results grouped bars of the cairn/restic
// ratios per operation with the issue targets; for scaling.mjs results time and peak RSS against
// data size / file count with the fitted lines; for index.mjs results memory and load time
// against the number of blobs.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BENCH_DIR } from './lib.mjs';

const COLORS = { time: '#3b6fb6', rss: '#e08a1e', cpu: '#7a9a3a', cairn: '#3b6fb6', restic: '#c0392b', issue2: '#8e44ad', issue3: '#d62728', parity: '#888' };
const FONT = 'font-family="DejaVu Sans, Arial, Helvetica, sans-serif"';

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const n2 = (x) => +x.toFixed(2);

function text(x, y, s, { size = 12, anchor = 'start', color = '#222', weight = 'normal', rotate } = {}) {
  const tr = rotate ? ` transform="rotate(${rotate} ${n2(x)} ${n2(y)})"` : '';
  return `<text x="${n2(x)}" y="${n2(y)}" font-size="${size}" text-anchor="${anchor}" fill="${color}" font-weight="${weight}"${tr}>${esc(s)}</text>`;
}

function line(x1, y1, x2, y2, { color = '#000', width = 1, dash } = {}) {
  return `<line x1="${n2(x1)}" y1="${n2(y1)}" x2="${n2(x2)}" y2="${n2(y2)}" stroke="${color}" stroke-width="${width}"${dash ? ` stroke-dasharray="${dash}"` : ''}/>`;
}

function rect(x, y, w, h, color, title) {
  return `<rect x="${n2(x)}" y="${n2(y)}" width="${n2(w)}" height="${n2(Math.max(0, h))}" fill="${color}">${title ? `<title>${esc(title)}</title>` : ''}</rect>`;
}

function svgDoc(w, h, body) {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" ${FONT}>\n<rect width="100%" height="100%" fill="#fff"/>\n${body.join('\n')}\n</svg>\n`;
}

/** Round tick values covering [0, max]. */
function ticks(max, count = 5) {
  if (!(max > 0)) return [0, 1];
  const raw = max / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((k) => k * mag).find((s) => s >= raw);
  const out = [];
  for (let v = 0; v <= max + step * 1e-9; v += step) out.push(+v.toPrecision(12));
  if (out[out.length - 1] < max) out.push(+(out[out.length - 1] + step).toPrecision(12));
  return out;
}

const fmtTick = (v) => (v === 0 ? '0' : Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? String(+v.toFixed(1)) : String(+v.toPrecision(3)));

// ---------------------------------------------------------------------------------------------
// run.mjs: ratio bars with the target lines

/** Grouped bars of cairn/restic (wall time, peak RSS, CPU) per operation, with the issue targets. */
export function ratioChartSvg(results) {
  const rows = (results.comparisons?.cairn ?? []).filter((r) => r.op !== 'init');
  const targets = results.targets ?? [];
  const series = [
    { key: 'ratio', label: 'wall time', color: COLORS.time },
    { key: 'rssRatio', label: 'peak RSS', color: COLORS.rss },
    { key: 'cpuRatio', label: 'CPU time (user+sys)', color: COLORS.cpu },
  ];
  const W = 900, H = 470, L = 60, R = 20, T = 70, B = 95;
  const pw = W - L - R, ph = H - T - B;
  const values = rows.flatMap((r) => series.map((s) => r[s.key])).filter((v) => Number.isFinite(v));
  const yMax = ticks(Math.max(2.1, ...values) * 1.05).slice(-1)[0];
  const yt = ticks(yMax);
  const Y = (v) => T + ph - (Math.min(v, yMax) / yMax) * ph;
  const out = [];
  const m = results.machine ?? {};
  out.push(text(W / 2, 24, `cairn / restic ratio per operation (lower is better) — median of ${results.config?.runs ?? '?'} runs`, { size: 16, anchor: 'middle', weight: 'bold' }));
  out.push(text(W / 2, 44, `${m.dataset ? `${m.dataset.files} files, ${m.dataset.MiB} MiB; ` : ''}${m.cpuModel ?? ''}, ${m.cores ?? '?'} cores, ${(m.date ?? '').slice(0, 10)}, cairn ${m.cairn?.gitHead?.slice(0, 8) ?? '?'}`, { size: 11, anchor: 'middle', color: '#555' }));
  for (const v of yt) {
    out.push(line(L, Y(v), L + pw, Y(v), { color: '#e6e6e6' }));
    out.push(text(L - 6, Y(v) + 4, fmtTick(v) + '×', { size: 11, anchor: 'end', color: '#444' }));
  }
  out.push(line(L, Y(1), L + pw, Y(1), { color: COLORS.parity, width: 1.2, dash: '2 3' }));
  const gw = pw / Math.max(1, rows.length);
  const bw = Math.min(34, (gw - 24) / series.length);
  rows.forEach((r, g) => {
    const gx = L + g * gw + (gw - bw * series.length) / 2;
    series.forEach((s, i) => {
      const v = r[s.key];
      const x = gx + i * bw;
      if (!Number.isFinite(v)) {
        out.push(text(x + bw / 2, Y(0) - 4, 'n/a', { size: 9, anchor: 'middle', color: '#999' }));
        return;
      }
      out.push(rect(x + 1, Y(v), bw - 2, Y(0) - Y(v), s.color, `${r.title}: ${s.label} ${v.toFixed(2)}×`));
      out.push(text(x + bw / 2, Y(v) - 4, v > yMax ? `${v.toFixed(1)}×↑` : v.toFixed(2), { size: 9, anchor: 'middle', color: '#333' }));
    });
    // target lines: time targets over the time bar, RSS targets over the RSS bar
    for (const t of targets) {
      if (t.limit == null) continue;
      const color = t.issue === 3 ? COLORS.issue3 : COLORS.issue2;
      const dash = t.issue === 3 ? '6 3' : '2 2';
      const isRss = /RSS/.test(t.name);
      if (isRss ? !(t.ops ?? ['backup', 'incremental', 'restore']).includes(r.op) : (t.ops?.[0] ?? opOfName(t.name)) !== r.op) continue;
      const i = isRss ? 1 : 0;
      const x = gx + i * bw;
      out.push(line(x - 4, Y(t.limit), x + bw + 4, Y(t.limit), { color, width: 2.5, dash }));
    }
    const words = r.title.split(' ');
    const half = Math.ceil(words.length / 2);
    const l1 = words.length > 2 ? words.slice(0, half).join(' ') : r.title;
    const l2 = words.length > 2 ? words.slice(half).join(' ') : '';
    out.push(text(L + g * gw + gw / 2, T + ph + 18, l1, { size: 12, anchor: 'middle' }));
    if (l2) out.push(text(L + g * gw + gw / 2, T + ph + 33, l2, { size: 12, anchor: 'middle' }));
  });
  out.push(line(L, T, L, T + ph, { color: '#444' }));
  out.push(line(L, T + ph, L + pw, T + ph, { color: '#444' }));
  // legend
  let lx = L, ly = H - 22;
  for (const s of series) {
    out.push(rect(lx, ly - 10, 12, 12, s.color));
    out.push(text(lx + 16, ly, s.label, { size: 11 }));
    lx += 30 + s.label.length * 6.5;
  }
  for (const [label, color, dash, width] of [['issue 2 target', COLORS.issue2, '2 2', 2], ['issue 3 target', COLORS.issue3, '6 3', 2], ['parity (1×)', COLORS.parity, '2 3', 1.2]]) {
    out.push(line(lx, ly - 4, lx + 24, ly - 4, { color, width, dash }));
    out.push(text(lx + 28, ly, label, { size: 11 }));
    lx += 40 + label.length * 6.5;
  }
  return svgDoc(W, H, out);
}

function opOfName(name) {
  if (/^initial backup/.test(name)) return 'backup';
  if (/^restore/.test(name)) return 'restore';
  if (/^unchanged incremental/.test(name)) return 'incremental';
  if (/^check/.test(name)) return 'check';
  return null;
}

export function writeRatioChart(results, file) {
  fs.writeFileSync(file, ratioChartSvg(results));
  return file;
}

// ---------------------------------------------------------------------------------------------
// line panels (scaling, index)

/**
 * One panel at (x0, y0) of size w × h: points per series and, when given, the fitted line.
 * series: [{ label, color, points: [[x, y]], fit: { slope, intercept } }]
 */
function panel(x0, y0, w, h, { title, subtitle, xLabel, yLabel, series, targetY, targetLabel }) {
  const out = [];
  const L = 52, R = 10, T = 50, B = 40;
  const pw = w - L - R, ph = h - T - B;
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = series.flatMap((s) => s.points.map((p) => p[1]));
  if (targetY != null) ys.push(targetY);
  const xMax = ticks(Math.max(...xs, 1e-9) * 1.02).slice(-1)[0];
  const yMax = ticks(Math.max(...ys, 1e-9) * 1.08).slice(-1)[0];
  const X = (v) => x0 + L + (v / xMax) * pw;
  const Y = (v) => y0 + T + ph - (v / yMax) * ph;
  out.push(text(x0 + w / 2, y0 + 14, title, { size: 12, anchor: 'middle', weight: 'bold' }));
  // legend row under the title: a dot and a label per series, then the subtitle
  {
    let lx = x0 + 14;
    const ly = y0 + 30;
    for (const s of series) {
      out.push(`<circle cx="${n2(lx)}" cy="${n2(ly - 4)}" r="3.2" fill="${s.color}"/>`);
      out.push(text(lx + 6, ly, s.label, { size: 10, color: '#222' }));
      lx += 16 + s.label.length * 5.6;
    }
    if (subtitle) out.push(text(x0 + 14, ly + 13, subtitle, { size: 10, color: '#555' }));
  }
  for (const v of ticks(yMax)) {
    out.push(line(x0 + L, Y(v), x0 + L + pw, Y(v), { color: '#eee' }));
    out.push(text(x0 + L - 5, Y(v) + 4, fmtTick(v), { size: 10, anchor: 'end', color: '#444' }));
  }
  for (const v of ticks(xMax)) {
    out.push(line(X(v), y0 + T + ph, X(v), y0 + T + ph + 4, { color: '#444' }));
    out.push(text(X(v), y0 + T + ph + 15, fmtTick(v), { size: 10, anchor: 'middle', color: '#444' }));
  }
  out.push(line(x0 + L, y0 + T, x0 + L, y0 + T + ph, { color: '#444' }));
  out.push(line(x0 + L, y0 + T + ph, x0 + L + pw, y0 + T + ph, { color: '#444' }));
  out.push(text(x0 + L + pw / 2, y0 + h - 6, xLabel, { size: 10, anchor: 'middle', color: '#333' }));
  out.push(text(x0 + 12, y0 + T + ph / 2, yLabel, { size: 10, anchor: 'middle', color: '#333', rotate: -90 }));
  if (targetY != null) {
    out.push(line(x0 + L, Y(targetY), x0 + L + pw, Y(targetY), { color: COLORS.issue3, width: 1.5, dash: '6 3' }));
    if (targetLabel) out.push(text(x0 + L + pw - 2, Y(targetY) - 4, targetLabel, { size: 9, anchor: 'end', color: COLORS.issue3 }));
  }
  for (const s of series) {
    if (s.fit && Number.isFinite(s.fit.slope)) {
      const a = 0, b = xMax;
      const ya = s.fit.intercept + s.fit.slope * a, yb = s.fit.intercept + s.fit.slope * b;
      // clip the fitted line to the panel
      const clip = (x, y) => [X(x), Y(Math.max(0, Math.min(yMax, y)))];
      const [x1, y1] = clip(a, ya), [x2, y2] = clip(b, yb);
      out.push(line(x1, y1, x2, y2, { color: s.color, width: 1.2, dash: '4 3' }));
    }
    const pts = [...s.points].sort((p, q) => p[0] - q[0]);
    if (pts.length > 1 && !s.fit) out.push(`<polyline fill="none" stroke="${s.color}" stroke-width="1.5" points="${pts.map(([x, y]) => `${n2(X(x))},${n2(Y(y))}`).join(' ')}"/>`);
    for (const [x, y] of pts) out.push(`<circle cx="${n2(X(x))}" cy="${n2(Y(y))}" r="3.2" fill="${s.color}"><title>${esc(`${s.label}: ${fmtTick(x)} → ${fmtTick(y)}`)}</title></circle>`);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// scaling.mjs

const SERIES_TITLE = { 'size-one': 'size, one file', 'size-many': 'size, many files', count: 'file count' };

/** Panels: one row per series (size one file, size many files, file count), columns backup time, restore time, peak RSS. */
export function scalingChartSvg(results) {
  const rows = Object.keys(results.fits ?? {}).filter((k) => results.points.some((p) => p.series === k));
  const cols = [
    { op: 'backup', metric: 'wallS', title: 'initial backup time', y: 'seconds' },
    { op: 'restore', metric: 'wallS', title: 'restore time', y: 'seconds' },
    { op: 'backup', metric: 'rssMiB', title: 'peak RSS', y: 'MiB (max of backup, restore)' },
  ];
  const PW = 340, PH = 270, TOP = 50;
  const W = PW * cols.length + 20, H = TOP + PH * Math.max(1, rows.length) + 10;
  const out = [];
  out.push(text(W / 2, 24, `Scaling: cairn vs restic, median of ${results.config?.runs ?? '?'} runs per point; dashed = least-squares fit`, { size: 15, anchor: 'middle', weight: 'bold' }));
  out.push(text(W / 2, 42, `${results.machine?.cpuModel ?? ''}, ${results.machine?.cores ?? '?'} cores, ${(results.machine?.date ?? '').slice(0, 10)}, cairn ${results.machine?.cairn?.gitHead?.slice(0, 8) ?? '?'}`, { size: 11, anchor: 'middle', color: '#555' }));
  rows.forEach((series, ri) => {
    const pts = results.points.filter((p) => p.series === series);
    const unit = series === 'count' ? { x: (p) => p.files / 1e5, label: 'files (×100k)', per: '100k files' } : { x: (p) => p.bytes / 2 ** 30, label: 'GiB', per: 'GiB' };
    cols.forEach((c, ci) => {
      const fitKey = c.metric === 'rssMiB' ? 'rss' : c.op;
      const ser = ['restic', 'cairn'].map((tool) => {
        const f = results.fits[series]?.[tool]?.[fitKey];
        return {
          label: `${tool}${f ? ` ${fmtTick(f.slope)} ${c.metric === 'rssMiB' ? 'MiB' : 's'}/${unit.per}` : ''}`,
          color: COLORS[tool],
          fit: f,
          points: pts.map((p) => {
            const m = p.medians?.[tool];
            const y = c.metric === 'rssMiB' ? Math.max(m?.backup?.maxRssMiB ?? NaN, m?.restore?.maxRssMiB ?? NaN) : m?.[c.op]?.wallS;
            return [unit.x(p), y];
          }).filter(([, y]) => Number.isFinite(y)),
        };
      });
      const ratio = results.fits[series]?.ratio?.[fitKey];
      out.push(...panel(ci * PW + 10, TOP + ri * PH, PW, PH, {
        title: `${SERIES_TITLE[series] ?? series}: ${c.title}`,
        subtitle: ratio != null ? `slope ratio cairn/restic ${ratio.toFixed(2)}×` : 'slope ratio n/a',
        xLabel: unit.label, yLabel: c.y, series: ser,
      }));
    });
  });
  return svgDoc(W, H, out);
}

export function writeScalingChart(results, file) {
  fs.writeFileSync(file, scalingChartSvg(results));
  return file;
}

// ---------------------------------------------------------------------------------------------
// index.mjs

/** Bytes per blob and load time against the number of blobs, per index structure. */
export function indexChartSvg(results) {
  const kinds = [...new Set(results.points.map((p) => p.kind))];
  const palette = ['#3b6fb6', '#7a9a3a', '#c0392b', '#e08a1e'];
  const e2e = results.e2eMedians ?? [];
  const PW = 400, PH = 280;
  const W = PW * (e2e.length ? 3 : 2) + 20, H = PH + 60;
  const out = [];
  out.push(text(W / 2, 24, `In-memory index: memory and load time by number of blobs (median of ${results.config?.runs ?? '?'})`, { size: 15, anchor: 'middle', weight: 'bold' }));
  out.push(text(W / 2, 42, `${results.machine?.cpuModel ?? ''}, ${(results.machine?.date ?? '').slice(0, 10)}, cairn ${results.machine?.cairn?.gitHead?.slice(0, 8) ?? '?'}`, { size: 11, anchor: 'middle', color: '#555' }));
  const ser = (metric) => kinds.map((k, i) => ({
    label: k,
    color: palette[i % palette.length],
    points: results.points.filter((p) => p.kind === k && Number.isFinite(p[metric])).map((p) => [p.blobs / 1e6, p[metric]]),
  }));
  out.push(...panel(10, 50, PW, PH, { title: 'bytes per blob (heap + external, after GC)', xLabel: 'million blobs', yLabel: 'bytes / blob', series: ser('bytesPerBlob'), targetY: results.config?.targetBytesPerBlob, targetLabel: `target ≤ ${results.config?.targetBytesPerBlob} B/blob` }));
  out.push(...panel(10 + PW, 50, PW, PH, { title: 'load time', xLabel: 'million blobs', yLabel: 'seconds', series: ser('loadS') }));
  if (e2e.length) {
    const fits = results.e2eFits ?? {};
    const eser = ['restic', 'cairn'].map((tool) => ({
      label: `${tool}${fits[tool]?.rssBytesPerBlob != null ? ` ${fits[tool].rssBytesPerBlob.toFixed(0)} B/blob` : ''}`,
      color: COLORS[tool],
      fit: fits[tool]?.rssMiBPerMillion ?? undefined,
      points: e2e.filter((p) => p.tool === tool && Number.isFinite(p.peakRssMiB)).map((p) => [p.blobs / 1e6, p.peakRssMiB]),
    }));
    out.push(...panel(10 + 2 * PW, 50, PW, PH, { title: 'backup --dry-run peak RSS (end to end)', subtitle: 'dashed = least-squares fit', xLabel: 'million blobs', yLabel: 'MiB', series: eser }));
  }
  return svgDoc(W, H, out);
}

export function writeIndexChart(results, file) {
  fs.writeFileSync(file, indexChartSvg(results));
  return file;
}

// ---------------------------------------------------------------------------------------------
// command line

/** Writes the chart for one results file (kind from its schema); returns the SVG path. */
export function chartFor(file) {
  const results = JSON.parse(fs.readFileSync(file, 'utf8'));
  const svg = file.replace(/\.json$/, '') + '.svg';
  if (/^cairn-bench-scaling/.test(results.schema ?? '')) return writeScalingChart(results, svg);
  if (/^cairn-bench-index/.test(results.schema ?? '')) return writeIndexChart(results, svg);
  return writeRatioChart(results, svg);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const files = process.argv.slice(2);
  const list = files.length ? files : ['latest.json', 'scaling-latest.json', 'index-latest.json'].map((f) => path.join(BENCH_DIR, 'out', f)).filter((f) => fs.existsSync(f));
  if (!list.length) {
    console.error('chart: no results files given or found in bench/out');
    process.exit(1);
  }
  for (const f of list) console.log(`wrote ${chartFor(path.resolve(f))}`);
}
