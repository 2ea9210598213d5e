import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  GO_MODE_DIR,
  RESTIC_MODE_MASK,
  chmodBitsFromGo,
  goModeFromUnix,
  nodeTypeFromGoMode,
  nodeTypeFromMode,
  unixModeFromGo,
} from './mode.js';

// spec §7.3, observed values
const TABLE: [number, number, string][] = [
  [0o100644, 420, 'file'],
  [0o100640, 416, 'file'],
  [0o104755, 8389101, 'file'],
  [0o040755, 2147484141, 'dir'],
  [0o041777, 2148532735, 'dir'],
  [0o120777, 134218239, 'symlink'],
  [0o010644, 33554852, 'fifo'],
  [0o060644, 67109284, 'dev'],
  [0o020644, 69206436, 'chardev'],
  [0o140755, 0x010001ed, 'socket'],
  [0o102755, 0x004001ed, 'file'], // setgid
];

test('goModeFromUnix / unixModeFromGo / node types: spec table', () => {
  for (const [unix, go, type] of TABLE) {
    assert.equal(goModeFromUnix(unix), go, unix.toString(8));
    assert.equal(unixModeFromGo(go), unix, go.toString(16));
    assert.equal(nodeTypeFromMode(unix), type);
    assert.equal(nodeTypeFromGoMode(go), type);
  }
  assert.equal(goModeFromUnix(0o040755), GO_MODE_DIR + 0o755);
  assert.ok(goModeFromUnix(0o040755) > 0, 'unsigned');
  assert.equal(chmodBitsFromGo(2148532735), 0o1777);
  assert.equal(chmodBitsFromGo(8389101), 0o4755);
  assert.equal(nodeTypeFromMode(0o170644), undefined);
  assert.equal(goModeFromUnix(0o170644), 0o644); // unknown type: no type bit (Go)
  assert.equal(nodeTypeFromGoMode(0x00080000), undefined); // ModeIrregular
});

test('property: unix → Go → unix is the identity on known types', () => {
  const types = [0o100000, 0o040000, 0o120000, 0o010000, 0o060000, 0o020000, 0o140000];
  fc.assert(
    fc.property(fc.constantFrom(...types), fc.integer({ min: 0, max: 0o7777 }), (t, perm) => {
      const go = goModeFromUnix(t | perm);
      assert.ok(go >= 0 && go <= 0xffffffff);
      assert.equal((go & ~RESTIC_MODE_MASK) >>> 0, 0);
      assert.equal(unixModeFromGo(go), t | perm);
    }),
    { seed: 42, numRuns: 2000 },
  );
});
