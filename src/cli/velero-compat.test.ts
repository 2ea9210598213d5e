import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Command } from 'commander';
import { isCairnError } from '../core/errors.js';
import * as agentCommand from './commands/agent.js';
import { FORWARDED_FLAGS, translateVeleroArgs } from './velero-compat.js';

test("Velero 1.10+ DaemonSet arguments become `cairn agent` with the flags cairn knows", () => {
  const t = translateVeleroArgs(['node-agent', 'server', '--features=EnableCSI', '--node-agent-configmap=node-agent-config', '--metrics-address=:8085', '--log-level=debug', '--log-format=json']);
  assert.deepEqual(t.argv, ['agent', '--node-agent-configmap=node-agent-config', '--metrics-address=:8085', '--log-level=debug', '--log-format=json']);
  assert.equal(t.warnings.length, 1);
  assert.match(t.warnings[0]!, /--features=EnableCSI: not used by cairn/);
});

test('Velero ≤1.9 `restic server` is accepted too; separate-value spelling is parsed', () => {
  const t = translateVeleroArgs(['restic', 'server', '--log-level', 'info', '--resource-timeout', '10m', '--metrics-address', '127.0.0.1:9000', '-n', 'velero']);
  assert.deepEqual(t.argv, ['agent', '--log-level=info', '--metrics-address=127.0.0.1:9000']);
  assert.equal(t.warnings.length, 2, t.warnings.join('\n'));
});

test('a boolean flag does not swallow the next flag; stray arguments are dropped with a warning', () => {
  const t = translateVeleroArgs(['node-agent', 'server', '--some-bool', '--log-level=warning', 'extra']);
  assert.deepEqual(t.argv, ['agent', '--log-level=warning']);
  assert.equal(t.warnings.length, 2);
});

test('a value flag at the very end without its value is dropped, not forwarded empty', () => {
  const t = translateVeleroArgs(['node-agent', 'server', '--metrics-address']);
  assert.deepEqual(t.argv, ['agent']);
  assert.match(t.warnings[0]!, /needs a value/);
});

test('help and version; anything else is refused with an explanation', () => {
  assert.deepEqual(translateVeleroArgs([]).argv, ['agent', '--help']);
  assert.deepEqual(translateVeleroArgs(['--help']).argv, ['agent', '--help']);
  assert.deepEqual(translateVeleroArgs(['version']).argv, ['--version']);
  for (const args of [['server'], ['node-agent'], ['backup', 'create', 'x'], ['install']]) {
    assert.throws(() => translateVeleroArgs(args), (e) => isCairnError(e, 'INVALID_ARGUMENT') && /node-agent server/.test(e.message), args.join(' '));
  }
});

test('every forwarded flag is an option of `cairn agent` (no crash loop after an image swap)', () => {
  const program = new Command();
  agentCommand.register(program, () => ({}));
  const agent = program.commands.find((c) => c.name() === 'agent');
  assert.ok(agent, 'the agent command registers itself');
  const longs = new Set(agent.options.map((o) => o.long));
  for (const f of FORWARDED_FLAGS) assert.ok(longs.has(`--${f}`), `cairn agent has no --${f}`);
});
