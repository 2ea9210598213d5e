/** Helpers for the maintenance e2e tests (prune, crash, interleavings). */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cairn, mustOk, restic, type RunResult } from './env.js';
import { diffFacts, makeRichTree, randomData, seeded, snapshotFacts, textData, type EntryFacts } from './tree.js';
import { LocalBackend } from '../../src/backend/local.js';
import { Repository } from '../../src/repository/repository.js';
import { PackWriter } from '../../src/repository/pack-writer.js';

export const MAINTENANCE_PW = 'prune-interleaving';
const PW = MAINTENANCE_PW;

export function lastJson(r: RunResult): Record<string, unknown> {
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

/** Changes the dataset a little: new random and text files, an append, a deletion. */
export function mutate(src: string, round: number): void {
  const rand = seeded(1000 + round);
  fs.mkdirSync(path.join(src, 'rounds'), { recursive: true });
  fs.writeFileSync(path.join(src, 'rounds', `r${round}.bin`), randomData(rand, 600_000 + Math.floor(rand() * 1_500_000)));
  fs.writeFileSync(path.join(src, 'rounds', `r${round}.txt`), textData(rand, 300_000));
  fs.appendFileSync(path.join(src, 'text', 'log.txt'), textData(rand, 50_000));
  const old = path.join(src, 'rounds', `r${round - 2}.bin`);
  if (fs.existsSync(old)) fs.rmSync(old);
}

export type Facts = Map<string, EntryFacts>;

export async function snapshotIds(env: Record<string, string>): Promise<Array<{ id: string; time: string }>> {
  return JSON.parse(mustOk(await cairn(['snapshots', '--json', '--no-lock'], { env }), 'snapshots').stdout);
}

/** Restores a snapshot with cairn (and with restic when asked) and compares it with the facts taken at backup time. */
export async function assertRestores(dir: string, env: Record<string, string>, id: string, facts: Facts, withRestic = false): Promise<void> {
  const target = path.join(dir, `restore-${id.slice(0, 8)}-${Math.random().toString(16).slice(2, 8)}`);
  mustOk(await cairn(['restore', id, '--target', target, '--no-lock'], { env }), `cairn restore ${id}`);
  assert.deepEqual(diffFacts(facts, snapshotFacts(path.join(target, 'src'))), [], `cairn restore of ${id.slice(0, 8)}`);
  fs.rmSync(target, { recursive: true, force: true });
  if (withRestic) {
    mustOk(await restic(['restore', id, '--target', target, '--no-lock'], { env }), `restic restore ${id}`);
    assert.deepEqual(diffFacts(facts, snapshotFacts(path.join(target, 'src'))), [], `restic restore of ${id.slice(0, 8)}`);
    fs.rmSync(target, { recursive: true, force: true });
  }
}

/** A repository with cairn and restic snapshots and partly used packs. */
export async function buildPruneFixture(dir: string): Promise<{ repo: string; env: Record<string, string>; facts: Map<string, Facts> }> {
  const repo = path.join(dir, 'repo');
  const src = path.join(dir, 'data', 'src');
  const cwd = path.dirname(src);
  makeRichTree(src, 21);
  const env = { RESTIC_REPOSITORY: repo, RESTIC_PASSWORD: PW };
  mustOk(await cairn(['init', '--chunker', 'rabin'], { env }), 'init');
  const facts = new Map<string, Facts>();
  for (let round = 0; round < 6; round++) {
    if (round > 0) mutate(src, round);
    const r = round % 3 === 2
      ? mustOk(await restic(['backup', 'src', '--json'], { env, cwd }), `restic backup ${round}`)
      : mustOk(await cairn(['backup', 'src', '--json', '--pack-size', '4'], { env, cwd }), `cairn backup ${round}`);
    const id = String(lastJson(r).snapshot_id);
    const full = (await snapshotIds(env)).find((s) => s.id.startsWith(id))!.id;
    facts.set(full, snapshotFacts(src));
  }
  // an orphaned pack (unreferenced) for prune's "delete first" step
  const r = await Repository.open(new LocalBackend(repo), PW);
  const w = new PackWriter(r);
  await w.add('data', 'ab'.repeat(32), r.sealer.seal(Buffer.alloc(5000, 1)));
  await w.flush();
  return { repo, env, facts };
}

