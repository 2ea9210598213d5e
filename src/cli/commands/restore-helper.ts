import type { Command } from 'commander';
import { CairnError, isCairnError } from '../../core/errors.js';
// Deliberately not engine/index.js nor ../context.js (which loads the engine for backend options):
// this command runs as an init container, where Velero's default limit is 128 MiB of memory, and
// loading every storage SDK would take more than that. engine/restore-helper.js only needs core/.
import { DEFAULT_RESTORES_DIR, runRestoreHelper, validateRestoreUid, type RestoreHelperEvent } from '../../engine/restore-helper.js';
import type { GlobalOptions } from '../context.js';

const out = (line: string) => void process.stdout.write(line + '\n');
const err = (line: string) => void process.stderr.write(line + '\n');

/** "1s", "500ms", "2m", "1h": the poll interval (the same grammar as the other commands' durations). */
export function parseInterval(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(s.trim());
  const ms = m ? Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'] : NaN;
  if (!(ms > 0)) throw new CairnError('INVALID_ARGUMENT', `invalid interval ${JSON.stringify(s)} (examples: 1s, 500ms, 2m)`);
  return ms;
}

/** Exit status after a signal, as a shell reports it (128 + signal number). */
const SIGNAL_EXIT: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 130, SIGTERM: 143 };

export function register(program: Command, g: () => GlobalOptions): void {
  program
    .command('restore-helper')
    .description("init container of restored pods (Velero's restore-wait): wait until the node agent has restored every volume mounted under the restores directory, then remove the markers and exit 0")
    .argument('<restore-uid>', 'UID of the Velero Restore: the marker file name the node agent writes into <volume>/.velero/')
    .option('--restores-dir <dir>', 'directory holding one mount per restored volume', DEFAULT_RESTORES_DIR)
    .option('--interval <duration>', 'how often to look for the markers (e.g. 1s, 500ms)', '1s')
    .action(async (restoreUid: string, o: { restoresDir: string; interval: string }) => {
      const gopts = g();
      validateRestoreUid(restoreUid);
      const intervalMs = parseInterval(o.interval);
      const say = (text: string, json: Record<string, unknown>) => {
        if (gopts.json) out(JSON.stringify(json));
        else if (!gopts.quiet) out(text);
      };
      say(`waiting for restore ${restoreUid}: every volume under ${o.restoresDir} needs .velero/${restoreUid}`, {
        message_type: 'start',
        restore_uid: restoreUid,
        restores_dir: o.restoresDir,
      });

      // The helper is often PID 1 of its container; Node then gets no default signal handling, so
      // SIGTERM (pod deletion) must be handled here or kubelet waits out the grace period.
      const controller = new AbortController();
      let received: NodeJS.Signals | undefined;
      const onSignal = (sig: NodeJS.Signals) => {
        received ??= sig;
        controller.abort(new Error(`received ${sig}`));
      };
      process.on('SIGTERM', onSignal);
      process.on('SIGINT', onSignal);
      try {
        const r = await runRestoreHelper({
          restoreUid,
          restoresDir: o.restoresDir,
          intervalMs,
          signal: controller.signal,
          report: (e) => report(e, say, gopts),
        });
        say(
          r.volumes.length === 0
            ? `no volumes under ${o.restoresDir}: nothing to wait for`
            : `all ${r.volumes.length} volume(s) restored${r.removeFailures.length ? ` (${r.removeFailures.length} marker director${r.removeFailures.length === 1 ? 'y' : 'ies'} left in place)` : ''}`,
          { message_type: 'summary', volumes: r.volumes, remove_failures: r.removeFailures },
        );
      } catch (e) {
        if (!received || !isCairnError(e, 'CANCELLED')) throw e;
        const line = `stopped by ${received} before every volume was restored; markers left in place`;
        if (gopts.json) out(JSON.stringify({ message_type: 'exit_error', code: SIGNAL_EXIT[received] ?? 1, message: line }));
        else err(line);
        process.exitCode = SIGNAL_EXIT[received] ?? 1;
      } finally {
        process.off('SIGTERM', onSignal);
        process.off('SIGINT', onSignal);
      }
    });
}

function report(e: RestoreHelperEvent, say: (text: string, json: Record<string, unknown>) => void, gopts: GlobalOptions): void {
  switch (e.type) {
    case 'waiting': {
      const s = e.scan;
      if (s.error) {
        // Velero keeps waiting when the directory cannot be listed; so do we, but say so on stderr.
        if (gopts.json) out(JSON.stringify({ message_type: 'waiting', error: s.error }));
        else err(`cannot list the restores directory (will retry): ${s.error}`);
        return;
      }
      const problems = Object.entries(s.volumeErrors).map(([v, m]) => `${v}: ${m}`);
      say(
        `waiting for ${s.pending.length} of ${s.volumes.length} volume(s): ${s.pending.join(', ')}` +
          (problems.length ? ` (errors: ${problems.join('; ')})` : '') +
          (s.skipped.length ? ` [skipped non-directories: ${s.skipped.join(', ')}]` : ''),
        { message_type: 'waiting', pending: s.pending, volumes: s.volumes, skipped: s.skipped, volume_errors: problems.length ? s.volumeErrors : undefined },
      );
      return;
    }
    case 'done':
      return;
    case 'removed':
      if (gopts.verbose) say(`removed ${e.path}`, { message_type: 'removed', volume: e.volume, path: e.path });
      return;
    case 'remove-failed':
      // Not fatal (Velero logs and ignores it): a non-root helper often cannot write the volume root.
      if (gopts.json) out(JSON.stringify({ message_type: 'remove_failed', volume: e.volume, path: e.path, error: e.error }));
      else err(`warning: could not remove ${e.path}: ${e.error}`);
      return;
  }
}
