/**
 * Throughput measurement (not a pass/fail test): CAIRN_BENCH=1 node --test build/src/chunker/throughput.test.js
 * Chunks 256 MiB of random data through splitChunks with each algorithm at restic's sizes, fed in
 * reads of several sizes, and reports MB/s (10^6 bytes per second) as test diagnostics.
 */
import { test } from 'node:test';
import { randomBytes } from 'node:crypto';
import { createChunker, DEFAULT_FASTCDC, RESTIC_RABIN } from './chunker.js';
import { splitBuffer, splitChunks } from './stream.js';
import { native } from '../native/index.js';
import type { Chunker } from './types.js';

const MiB = 1024 * 1024;
const SIZE = Number(process.env.CAIRN_BENCH_MIB ?? 256) * MiB;

async function* reads(data: Buffer, size: number): AsyncGenerator<Uint8Array> {
  for (let pos = 0; pos < data.length; pos += size) yield data.subarray(pos, Math.min(data.length, pos + size));
}

test('chunking throughput', { skip: process.env.CAIRN_BENCH ? false : 'set CAIRN_BENCH=1 to measure' }, async (t) => {
  const data = randomBytes(SIZE);
  const chunkers: Array<[string, Chunker]> = [
    [`rabin (native.${native.kind})`, createChunker({ algorithm: 'rabin', ...RESTIC_RABIN, polynomial: 0x2497575ac89183n })],
    ['fastcdc', createChunker({ algorithm: 'fastcdc', ...DEFAULT_FASTCDC })],
  ];
  const measure = async (label: string, run: () => Promise<number>): Promise<void> => {
    let bestWall = 0;
    let bestCpu = 0;
    let count = 0;
    for (let rep = 0; rep < 3; rep++) {
      const t0 = process.hrtime.bigint();
      const c0 = process.cpuUsage();
      count = await run();
      const wall = Number(process.hrtime.bigint() - t0) / 1e9;
      const cu = process.cpuUsage(c0);
      const cpu = (cu.user + cu.system) / 1e6;
      bestWall = Math.max(bestWall, data.length / 1e6 / wall);
      bestCpu = Math.max(bestCpu, data.length / 1e6 / cpu);
    }
    // CPU-time throughput is the steadier number on a shared machine.
    t.diagnostic(`${label}: ${bestWall.toFixed(0)} MB/s wall, ${bestCpu.toFixed(0)} MB/s per CPU-second (${count} chunks, best of 3)`);
  };
  for (const [name, chunker] of chunkers) {
    await measure(`${name}, whole file in one buffer (splitBuffer)`, async () => splitBuffer(data, chunker).length);
    for (const readSize of [64 * 1024, 1 * MiB, 4 * MiB, 8 * MiB]) {
      await measure(`${name}, splitChunks with reads of ${readSize / 1024} KiB`, async () => {
        let count = 0;
        for await (const _chunk of splitChunks(reads(data, readSize), chunker.newFile())) count++;
        return count;
      });
    }
  }
});
