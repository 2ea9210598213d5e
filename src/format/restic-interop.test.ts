/**
 * Cross-check against the real restic 0.14 binary: restic backs up files with hostile names
 * (control characters, invalid UTF-8, and every code point whose printability differs between
 * Go 1.19's Unicode 13 tables and Node's newer ICU) and we compare:
 *   - goQuote(raw name bytes) with the name string restic wrote, for every node;
 *   - SHA-256 of encodeTree(decodeTree(blob)) with the tree ID, for every tree.
 * Skipped (visibly) when `restic` is not installed; CI installs it (see GUIDE §3).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { goQuote } from './goquote.js';
import { goJsonQuote, goJsonQuoteBytes, parseJson } from './json.js';
import * as fx from './testing/fixtures.js';
import { decodeTree, encodeTree } from './tree.js';
import { isGoPrint } from './unicode13.js';

function haveRestic(): boolean {
  try {
    return /restic 0\.14/.test(execFileSync('restic', ['version'], { encoding: 'utf8' }));
  } catch {
    return false;
  }
}

/** Deterministic PRNG (mulberry32) so failures are reproducible. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Builds names (raw bytes) that exercise Go's quoting rules. Never `/`, NUL, `.` or `..`. */
function hostileNames(): Buffer[] {
  const rand = rng(42);
  const names: Buffer[] = [];
  const fromCps = (cps: number[]) => Buffer.from(String.fromCodePoint(...cps), 'utf8');
  // code points printable for Node's ICU but not for Go 1.19 (assigned after Unicode 13)
  const re = /^[\p{L}\p{M}\p{N}\p{P}\p{S}]$/u;
  const differ: number[] = [];
  for (let cp = 0x80; cp < 0x110000; cp++) {
    if (cp >= 0xd800 && cp <= 0xdfff) continue;
    if (isGoPrint(cp) !== re.test(String.fromCodePoint(cp))) differ.push(cp);
  }
  // sample them (all of them would mean thousands of files), plus a random sample of everything
  const pick = (list: number[], n: number) => Array.from({ length: n }, () => list[Math.floor(rand() * list.length)]);
  const sampleDiffer = pick(differ, 1500);
  const any: number[] = [];
  while (any.length < 3000) {
    const cp = Math.floor(rand() * 0x110000);
    if (cp >= 0xd800 && cp <= 0xdfff) continue;
    any.push(cp);
  }
  const bmp: number[] = [];
  while (bmp.length < 3000) {
    const cp = 0x80 + Math.floor(rand() * (0x10000 - 0x80));
    if (cp >= 0xd800 && cp <= 0xdfff) continue;
    bmp.push(cp);
  }
  for (const list of [sampleDiffer, any, bmp]) {
    for (let i = 0; i < list.length; i += 40) names.push(fromCps([0x61, ...list.slice(i, i + 40)]));
  }
  // ASCII controls, DEL, C1 controls and other specials, one per name and all together
  const specials = [
    ...Array.from({ length: 31 }, (_, i) => i + 1), 0x7f, ...Array.from({ length: 32 }, (_, i) => 0x80 + i),
    0xa0, 0xad, 0x200b, 0x2028, 0x2029, 0xfeff, 0xfffd, 0xe000, 0xf8ff, 0xffff, 0x10ffff, 0x1f600, 0xe0001,
    0x22, 0x5c, 0x3c, 0x3e, 0x26, 0x27, 0x60,
  ];
  for (const cp of specials) names.push(fromCps([0x6e, cp, 0x6e]));
  names.push(fromCps([0x7a, ...specials]));
  // invalid UTF-8: lone continuation/lead bytes, truncated, overlong, surrogates, > U+10FFFF
  const invalid = [
    [0x80], [0xbf], [0xc0, 0x80], [0xc1, 0xbf], [0xc2], [0xe2, 0x82], [0xe0, 0x80, 0x80], [0xed, 0xa0, 0x80],
    [0xed, 0xbf, 0xbf], [0xf0, 0x80, 0x80, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xf5, 0x80], [0xff], [0xfe],
    [0xf0, 0x9f, 0x98], [0xe2, 0x98, 0x83, 0x83], [0xc3, 0xa9, 0xa9],
  ];
  for (const b of invalid) names.push(Buffer.from([0x62, ...b, 0x62]));
  // random byte strings
  for (let i = 0; i < 200; i++) {
    const len = 1 + Math.floor(rand() * 40);
    const b = Buffer.alloc(len);
    for (let k = 0; k < len; k++) {
      let v: number;
      do v = Math.floor(rand() * 256);
      while (v === 0 || v === 0x2f);
      b[k] = v;
    }
    names.push(Buffer.concat([Buffer.from('r'), b]));
  }
  // dedupe, and keep file names within NAME_MAX
  const seen = new Set<string>();
  return names.filter((n) => {
    const k = n.toString('hex');
    if (n.length > 255 || seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

test('restic 0.14 writes the same node names and tree bytes we do', { timeout: 120_000 }, (t) => {
  if (!haveRestic()) {
    t.skip('restic 0.14 not installed');
    return;
  }
  const tmp = mkdtempSync(path.join(tmpdir(), 'cairn-format-interop-'));
  try {
    const src = path.join(tmp, 'src');
    mkdirSync(src);
    const names = hostileNames();
    // Node takes Buffer paths, so names reach the file system as raw bytes
    for (const n of names) writeFileSync(Buffer.concat([Buffer.from(src + '/'), n]), '');
    // symlinks whose targets are the same hostile byte strings: linktarget is a plain Go JSON
    // string, so invalid UTF-8 becomes `\ufffd` escapes there
    mkdirSync(path.join(src, 'links'));
    names.forEach((n, i) => symlinkSync(n, Buffer.from(path.join(src, 'links', 'l' + i))));
    const repo = path.join(tmp, 'repo');
    const env = { ...process.env, RESTIC_PASSWORD: fx.FIXTURE_PASSWORD, TZ: 'UTC' };
    execFileSync('restic', ['init', '--repository-version', '2', '-r', repo], { env, stdio: 'ignore' });
    execFileSync('restic', ['-r', repo, 'backup', 'src', '--host', 'interop'], { env, cwd: tmp, stdio: 'ignore' });

    const keyId = readdirSync(path.join(repo, 'keys'))[0];
    const key = fx.masterKeyFromKeyFile(readFileSync(path.join(repo, 'keys', keyId)), fx.FIXTURE_PASSWORD);
    const repoFx: fx.Fixture = { name: 'interop', dir: repo, version: 2, key };
    const trees = fx.readTreeBlobs(repoFx);
    assert.ok(trees.length >= 2);

    const expected = new Map(names.map((n) => [n.toString('hex'), n]));
    let checkedNames = 0;
    let checkedLinks = 0;
    for (const tr of trees) {
      // tree bytes: decode + encode reproduces restic's blob exactly
      assert.equal(fx.sha256Hex(encodeTree(decodeTree(tr.plain))), tr.id, `tree ${tr.id} re-encodes differently`);
      const doc = parseJson(tr.plain) as { nodes: { name: string }[] };
      const decoded = decodeTree(tr.plain);
      doc.nodes.forEach((n, i) => {
        const node = decoded[i];
        if (node.type === 'symlink') {
          const target = names[Number(node.name.toString().slice(1))];
          // what we would write for the raw target equals what restic wrote (and we decoded)
          assert.equal(goJsonQuoteBytes(target), goJsonQuote(node.linktarget ?? ''), `link target ${target.toString('hex')}`);
          checkedLinks++;
          return;
        }
        const raw = node.name;
        if (!expected.has(raw.toString('hex'))) return; // the `src` node of the root tree
        assert.equal(goQuote(raw), n.name, `name ${raw.toString('hex')}`);
        checkedNames++;
      });
    }
    assert.equal(checkedNames, names.length, 'every file appears in the tree');
    assert.equal(checkedLinks, names.length, 'every symlink appears in the tree');
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
