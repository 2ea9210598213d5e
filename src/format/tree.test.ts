import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { isCairnError } from '../core/errors.js';
import { INVALID_UTF8_MARK } from './json.js';
import * as fx from './testing/fixtures.js';
import { EMPTY_TREE_ID, decodeTree, encodeTree, type TreeNode } from './tree.js';

const FIXTURE_TREE_IDS = [
  '7799dc17944926087766f1a7caa404807d0d33808ff961d45b8c868cdb2669be',
  '7724bef398895b68c2e777c771e531926a7116409158e5a1d7ac05cb7a58af5d',
  'a875e408596d84ed792ac53d7f5122bad171475a7725826f1fa83e1eaf4a18e2',
  'ac08ce34ba4f8123618661bef2425f7028ffb9ac740578a3ee88684d2523fee8',
  'eb5741d54831496007f07445d001ebcad78e2170b86e9c2c737b2f184ffeefb0',
  '11e8ecf89672cd226644644491b5736278e9d74a5d7f8661534c3e2f9253e434',
  'a4b5031ccb11d4376a3932009244cf332861511562f10f2ca9a8370dc775d142',
  'd691a03534fb18b2de1f49fdf74ee0291da0789ee62de51846f11aad46579b67',
  '7569d6aa8038e396059fd7e4e4aaf6bc16f3cf05f5cd9337241fd15391c44e84',
  'f78c1a1fbce94e43bd6816aeb4a67a47b24275c635a8a576257d6a2265eedb4f',
].sort();

for (const name of fx.FIXTURE_NAMES) {
  test(`${name}: every tree blob re-encodes to its own ID`, () => {
    const f = fx.openFixture(name);
    const trees = fx.readTreeBlobs(f);
    assert.deepEqual(trees.map((t) => t.id).sort(), FIXTURE_TREE_IDS);
    for (const t of trees) {
      assert.equal(fx.sha256Hex(t.plain), t.id, 'fixture blob hash');
      const nodes = decodeTree(t.plain);
      const again = encodeTree(nodes);
      assert.equal(fx.sha256Hex(again), t.id, `tree ${t.id}`);
      assert.deepEqual(again, t.plain);
      // decoding is stable too
      assert.deepEqual(decodeTree(again), nodes);
    }
  });
}

test('fixture content decodes to the README table', () => {
  const f = fx.openFixture('restic-0.14-v2');
  const trees = new Map(fx.readTreeBlobs(f).map((t) => [t.id, decodeTree(t.plain)]));
  const src = trees.get('7724bef398895b68c2e777c771e531926a7116409158e5a1d7ac05cb7a58af5d');
  assert.ok(src);
  const byName = new Map(src.map((n) => [n.name.toString(), n]));
  const priv = byName.get('private.txt');
  assert.ok(priv);
  assert.equal(priv.mode, 384);
  assert.deepEqual(priv.extendedAttributes, [{ name: 'user.fixture', value: Buffer.from('xattr value \x00\x01\xff', 'latin1') }]);
  const empty = byName.get('empty.txt');
  assert.ok(empty);
  assert.deepEqual(empty.content, []);
  assert.equal(empty.size, undefined);
  assert.equal(byName.get('script.sh')?.mtime, '2023-06-16T08:00:00.123456789Z');
  assert.equal(byName.get('emptydir')?.subtree, EMPTY_TREE_ID);
  assert.equal(byName.get('emptydir')?.content, null);
  assert.equal(byName.get('hello.txt')?.links, 2);
  assert.equal(byName.get('big')?.mode, 2147484141);
  const links = trees.get('eb5741d54831496007f07445d001ebcad78e2170b86e9c2c737b2f184ffeefb0');
  assert.equal(links?.find((n) => n.name.toString() === 'dangling')?.linktarget, 'does/not/exist');
  assert.equal(links?.find((n) => n.name.toString() === 'to-hello')?.mode, 134218239);
});

/** The nodes of the fixture's /src/weird, built from raw names (metadata copied from the fixture). */
function weirdNodes(): TreeNode[] {
  const file = (name: string, inode: bigint, size: number, blob: string): TreeNode => ({
    name: Buffer.from(name, 'utf8'),
    type: 'file',
    mode: 0o644,
    mtime: '2023-06-15T12:34:56Z',
    atime: '2023-06-15T12:34:56Z',
    ctime: '2026-11-22T01:03:37.139172045Z',
    uid: 0,
    gid: 0,
    user: 'root',
    group: 'root',
    inode,
    deviceId: 65024n,
    size,
    links: 1,
    content: [blob],
  });
  // deliberately unsorted; JS string order would put x😀 before x！
  return [
    file('x😀.txt', 1867794n, 6, '5312b0b582d805303c95d7e2b1bc6fad70e04b3dde5413aae758b68767b06ada'),
    file('x！.txt', 1867793n, 22, '3aa24d91b3d8784a73e5c6890046dc80f18d62dcbb7351eb30c0a84a5169b9a7'),
    file('weird "quote" back\\slash <tag> & amp é ☃ 😀 nbsp\u00a0 tab\t.txt', 1867792n, 18,
      '0f0e0ae2f36e37e631b5e74b452980367d10ab67eedb3e080ceeebffcf072f1c'),
    file('a-lower.txt', 1867796n, 6, 'b908e4daaf9d57fe9cb551a689a35c9a9e0fac85fdf11faaa0a1ba0e5efc06fd'),
    file('B-upper.txt', 1867795n, 6, 'e83189db38554920ea572093f9ad32facf682f28ccecdac085c1511735a2b492'),
  ];
}

test('encodeTree builds /src/weird from raw names with restic\'s tree ID', () => {
  const nodes = weirdNodes();
  const before = nodes.map((n) => n.name.toString());
  const buf = encodeTree(nodes);
  assert.equal(fx.sha256Hex(buf), 'f78c1a1fbce94e43bd6816aeb4a67a47b24275c635a8a576257d6a2265eedb4f');
  assert.ok(
    buf.includes(
      '"name":"weird \\\\\\"quote\\\\\\" back\\\\\\\\slash \\u003ctag\\u003e \\u0026 amp é ☃ 😀 nbsp\\\\u00a0 tab\\\\t.txt"',
    ),
  );
  assert.deepEqual(nodes.map((n) => n.name.toString()), before, 'input not reordered');
  const order = decodeTree(buf).map((n) => n.name.toString());
  assert.deepEqual(order.slice(0, 2), ['B-upper.txt', 'a-lower.txt']);
  assert.deepEqual(order.slice(3), ['x！.txt', 'x😀.txt']);
});

test('empty tree', () => {
  const buf = encodeTree([]);
  assert.equal(buf.toString(), '{"nodes":[]}\n');
  assert.equal(fx.sha256Hex(buf), EMPTY_TREE_ID);
  assert.deepEqual(decodeTree(buf), []);
  assert.deepEqual(decodeTree(Buffer.from('{"nodes":null}')), []);
  assert.deepEqual(decodeTree(Buffer.from('{}')), []);
});

const T = '2023-06-15T12:34:56Z';
const base = (name: string, extra: Partial<TreeNode> = {}): TreeNode => ({
  name: Buffer.from(name),
  type: 'file',
  mode: 0,
  mtime: T,
  atime: T,
  ctime: T,
  uid: 0,
  gid: 0,
  content: null,
  ...extra,
});

test('key order and omission rules (§7.2, §7.6)', () => {
  const id = 'ab'.repeat(32);
  const all = base('all', {
    mode: 0o755,
    uid: 1000,
    gid: 100,
    user: 'u<',
    group: 'g',
    inode: 18446744073709551615n,
    deviceId: 9007199254740993n,
    size: 12,
    links: 3,
    linktarget: 'x\u2028',
    extendedAttributes: [
      { name: 'user.a', value: Buffer.from('hi') },
      { name: 'user.nil', value: null },
      { name: 'user.empty', value: Buffer.alloc(0) },
    ],
    device: 259n,
    content: [id, id],
    subtree: id,
    error: 'oops',
  });
  assert.equal(
    encodeTree([all]).toString(),
    '{"nodes":[{"name":"all","type":"file","mode":493,"mtime":"' + T + '","atime":"' + T + '","ctime":"' + T +
      '","uid":1000,"gid":100,"user":"u\\u003c","group":"g","inode":18446744073709551615,"device_id":9007199254740993,' +
      '"size":12,"links":3,"linktarget":"x\\u2028","extended_attributes":[{"name":"user.a","value":"aGk="},' +
      '{"name":"user.nil","value":null},{"name":"user.empty","value":""}],"device":259,"content":["' + id + '","' + id +
      '"],"subtree":"' + id + '","error":"oops"}]}\n',
  );
  assert.deepEqual(decodeTree(encodeTree([all])), [all]);
  const zero = base('z', { user: '', group: '', inode: 0n, deviceId: 0n, size: 0, links: 0, linktarget: '', extendedAttributes: [], device: 0n, error: '' });
  assert.equal(
    encodeTree([zero]).toString(),
    '{"nodes":[{"name":"z","type":"file","mtime":"' + T + '","atime":"' + T + '","ctime":"' + T + '","uid":0,"gid":0,"content":null}]}\n',
  );
  assert.match(encodeTree([base('e', { content: [] })]).toString(), /"content":\[\]\}/);
});

test('sorting by raw bytes; duplicate / empty names rejected', () => {
  const names = [Buffer.from([0xff]), Buffer.from('a'), Buffer.from('B'), Buffer.from([0x61, 0x00])];
  const buf = encodeTree(names.map((n) => ({ ...base('x'), name: n })));
  assert.deepEqual(decodeTree(buf).map((n) => n.name.toString('hex')), ['42', '61', '6100', 'ff']);
  assert.match(buf.toString(), /"name":"\\\\xff"/);
  assert.throws(() => encodeTree([base('a'), base('b'), base('a')]), (e) => isCairnError(e, 'INVALID_ARGUMENT'));
  assert.throws(() => encodeTree([base('')]), (e) => isCairnError(e, 'INVALID_ARGUMENT'));
  assert.throws(() => encodeTree([{ ...base('a'), name: 'a' as unknown as Buffer }]), (e) => isCairnError(e, 'INVALID_ARGUMENT'));
  // a FileMode assembled with JS bitwise ops is signed; same bits, same output
  assert.deepEqual(encodeTree([base('d', { mode: 0x80000000 | 0o755 })]), encodeTree([base('d', { mode: 2147484141 })]));
});

test('encodeTree validates values', () => {
  const bad: Partial<TreeNode>[] = [
    { uid: -1 }, { gid: 2 ** 32 }, { mode: 1.5 }, { inode: -1n }, { inode: 1n << 64n }, { size: -3 },
    { content: ['AB'.repeat(32)] }, { content: ['abc'] }, { subtree: 'zz' },
  ];
  for (const b of bad) assert.throws(() => encodeTree([base('n', b)]), (e) => isCairnError(e, 'INVALID_ARGUMENT'), JSON.stringify(b, (_k, v) => (typeof v === 'bigint' ? String(v) : v)));
});

test('decodeTree: tolerant of unknown keys, nulls, case; strict on types', () => {
  const id = 'cd'.repeat(32);
  const nodes = decodeTree(
    Buffer.from(
      '{"nodes":[{"name":"a","type":"whiteout","mode":0,"mtime":"' + T + '","atime":"' + T + '","ctime":"' + T +
        '","uid":1,"gid":2,"user":null,"linktarget_raw":"eA==","future":{"x":[1,2]},"Content":["' + id.toUpperCase() +
        '"],"subtree":null}],"extra":1}',
    ),
  );
  assert.deepEqual(nodes, [{ ...base('a', { type: 'whiteout', uid: 1, gid: 2 }), content: [id] }]);
  // missing times decode to Go's zero time (what restic would write back)
  assert.equal(decodeTree(Buffer.from('{"nodes":[{"name":"a","type":"dir"}]}'))[0].mtime, '0001-01-01T00:00:00Z');
  const bad = [
    'not json', '[]', '{"nodes":{}}', '{"nodes":[1]}', '{"nodes":[null]}',
    '{"nodes":[{"name":1}]}', '{"nodes":[{"name":"a\\"b"}]}', '{"nodes":[{"name":"\\\\q"}]}',
    '{"nodes":[{"mode":-1}]}', '{"nodes":[{"mode":4294967296}]}', '{"nodes":[{"uid":1.5}]}', '{"nodes":[{"uid":"1"}]}',
    '{"nodes":[{"inode":18446744073709551616}]}', '{"nodes":[{"size":1.5}]}', '{"nodes":[{"size":9007199254740993}]}',
    '{"nodes":[{"inode":1e20}]}', '{"nodes":[{"links":-1}]}', '{"nodes":[{"mtime":"yesterday"}]}',
    '{"nodes":[{"content":"x"}]}', '{"nodes":[{"content":["xyz"]}]}', '{"nodes":[{"subtree":5}]}',
    '{"nodes":[{"extended_attributes":[{"name":"a","value":"!!"}]}]}', '{"nodes":[{"extended_attributes":{}}]}',
  ];
  for (const s of bad) assert.throws(() => decodeTree(Buffer.from(s)), (e) => isCairnError(e, 'CORRUPT'), s);
});

test('integers beyond 2^53 survive (fast path falls back to the lossless parser)', () => {
  const json = '{"nodes":[{"name":"n","type":"file","mtime":"' + T + '","atime":"' + T + '","ctime":"' + T +
    '","uid":0,"gid":0,"inode":18446744073709551615,"device_id":9007199254740993,"device":9007199254740992,"content":null}]}\n';
  const [n] = decodeTree(Buffer.from(json));
  assert.equal(n.inode, 18446744073709551615n);
  assert.equal(n.deviceId, 9007199254740993n);
  assert.equal(n.device, 9007199254740992n);
  assert.equal(encodeTree([n]).toString(), json);
});

test('invalid UTF-8 in plain strings round-trips as restic wrote it', () => {
  const json = '{"nodes":[{"name":"l","type":"symlink","mtime":"' + T + '","atime":"' + T + '","ctime":"' + T +
    '","uid":0,"gid":0,"linktarget":"a\\ufffd\\ufffdb","content":null}]}\n';
  const nodes = decodeTree(Buffer.from(json));
  assert.equal(nodes[0].linktarget, 'a' + INVALID_UTF8_MARK + INVALID_UTF8_MARK + 'b');
  assert.equal(encodeTree(nodes).toString(), json);
  // what a restorer writes: U+FFFD bytes, as restic would restore it
  assert.deepEqual(Buffer.from(nodes[0].linktarget ?? ''), Buffer.from('a\ufffd\ufffdb'));
});

const idArb = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('hex'));
const u64Arb = fc.bigInt(0n, (1n << 64n) - 1n);
const timeArb = fc.constantFrom(T, '2026-11-22T01:03:37.139172045Z', '1969-12-31T23:59:59.5-05:30');
const optStr = fc.option(fc.string({ unit: 'binary', maxLength: 12 }), { nil: undefined });
const nodeArb: fc.Arbitrary<TreeNode> = fc
  .record({
    name: fc.uint8Array({ minLength: 1, maxLength: 24 }).map((b) => Buffer.from(b)),
    type: fc.constantFrom('file', 'dir', 'symlink', 'dev', 'chardev', 'fifo', 'socket', 'odd'),
    mode: fc.nat({ max: 0xffffffff }),
    mtime: timeArb,
    atime: timeArb,
    ctime: timeArb,
    uid: fc.nat({ max: 0xffffffff }),
    gid: fc.nat({ max: 0xffffffff }),
    user: optStr,
    group: optStr,
    inode: fc.option(u64Arb, { nil: undefined }),
    deviceId: fc.option(u64Arb, { nil: undefined }),
    size: fc.option(fc.nat({ max: Number.MAX_SAFE_INTEGER }), { nil: undefined }),
    links: fc.option(fc.nat(), { nil: undefined }),
    linktarget: optStr,
    extendedAttributes: fc.option(
      fc.array(
        fc
          .record({ name: fc.string({ maxLength: 8 }), value: fc.option(fc.uint8Array({ maxLength: 8 }).map((b) => Buffer.from(b)), { nil: null }) })
          .map((r) => ({ name: r.name, value: r.value })), // plain prototype, like decodeTree's output
        { maxLength: 3 },
      ),
      { nil: undefined },
    ),
    device: fc.option(u64Arb, { nil: undefined }),
    content: fc.option(fc.array(idArb, { maxLength: 3 }), { nil: null }),
    subtree: fc.option(idArb, { nil: undefined }),
    error: optStr,
  })
  .map((r) => {
    // drop undefined / zero optionals: that is the normal form decodeTree produces
    const n: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(r)) {
      const optional = !['name', 'type', 'mode', 'mtime', 'atime', 'ctime', 'uid', 'gid', 'content'].includes(k);
      if (optional && (v === undefined || v === '' || v === 0 || v === 0n || (Array.isArray(v) && v.length === 0))) continue;
      n[k] = v;
    }
    return n as unknown as TreeNode;
  });

test('property: decodeTree(encodeTree(nodes)) == sorted nodes; re-encoding is byte-identical', () => {
  fc.assert(
    fc.property(fc.uniqueArray(nodeArb, { maxLength: 8, selector: (n) => n.name.toString('hex') }), (nodes) => {
      const buf = encodeTree(nodes);
      const back = decodeTree(buf);
      const sorted = [...nodes].sort((a, b) => Buffer.compare(a.name, b.name));
      assert.deepEqual(back, sorted);
      assert.deepEqual(encodeTree(back), buf);
      assert.equal(buf[buf.length - 1], 0x0a);
    }),
    { seed: 42, numRuns: 1500 },
  );
});

test('speed: encode/decode of a 1000-node tree', (t) => {
  const nodes: TreeNode[] = [];
  for (let i = 0; i < 1000; i++) {
    nodes.push({
      ...weirdNodes()[i % 5],
      name: Buffer.from(`file-${String(i).padStart(5, '0')}-${i % 7 === 0 ? 'é ☃' : 'plain'}.dat`),
      inode: 1_000_000n + BigInt(i),
      content: ['0f0e0ae2f36e37e631b5e74b452980367d10ab67eedb3e080ceeebffcf072f1c'],
    });
  }
  const buf = encodeTree(nodes);
  const rounds = 30;
  let t0 = performance.now();
  for (let r = 0; r < rounds; r++) encodeTree(nodes);
  const enc = (performance.now() - t0) / rounds;
  t0 = performance.now();
  for (let r = 0; r < rounds; r++) decodeTree(buf);
  const dec = (performance.now() - t0) / rounds;
  t.diagnostic(
    `1000-node tree (${buf.length} bytes): encode ${enc.toFixed(2)} ms (${(enc * 1000 / 1000).toFixed(2)} µs/node), ` +
      `decode ${dec.toFixed(2)} ms (${(dec * 1000 / 1000).toFixed(2)} µs/node)`,
  );
  // generous bound so a loaded CI machine does not flake; typical numbers are ~10x lower
  assert.ok(enc < 100 && dec < 100);
});
