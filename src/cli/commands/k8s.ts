/**
 * `cairn k8s …`: pod-volume backups, restores and repository maintenance in a Kubernetes cluster
 * without a Velero server, with Velero's CRDs and pod annotations; the node agents (`cairn agent`)
 * do the data work. Every subcommand takes --kubeconfig (else $KUBECONFIG, else in-cluster) and
 * --velero-namespace. The Kubernetes client is loaded inside the actions only, so other commands
 * start without it.
 */
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { Command } from 'commander';
import { systemClock } from '../../core/clock.js';
import { CairnError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import { EXIT, err, out, parseDuration, withInterrupt, type GlobalOptions } from '../context.js';
import { columns, duration, oneLine, size, when } from './k8s-output.js';

type Standalone = typeof import('../../agent/standalone/index.js');
type ExpirePolicy = import('../../engine/index.js').ExpirePolicy;

interface CommonFlags {
  kubeconfig?: string;
  veleroNamespace: string;
  credentialsDir: string;
}

function collect(v: string, prev: string[] = []): string[] {
  return [...prev, ...v.split(',').filter(Boolean)];
}

function collectRaw(v: string, prev: string[] = []): string[] {
  return [...prev, v];
}

function common(c: Command): Command {
  return c
    .option('--kubeconfig <file>', 'kubeconfig file (default: $KUBECONFIG, else the in-cluster service account)')
    .option('--velero-namespace <ns>', 'namespace of the PodVolumeBackups/Restores, backup storage locations and secrets', 'velero')
    .option('--credentials-dir <dir>', 'where backup storage location credentials are written (mode 0600)', path.join(tmpdir(), 'cairn-credentials'));
}

/** Logs to stderr: warnings and errors always, information with -v, debug with -vv. */
function cliLogger(g: GlobalOptions, fields: Record<string, unknown> = {}): Logger {
  const verbose = g.verbose ?? 0;
  const line = (level: string, msg: string, f?: Record<string, unknown>) => {
    const all = { ...fields, ...f };
    const extra = Object.entries(all)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
      .join(' ');
    err(`${level}: ${msg}${extra ? ` (${extra})` : ''}`);
  };
  return {
    debug(m, f) {
      if (verbose >= 2) line('debug', m, f);
    },
    info(m, f) {
      if (verbose >= 1 && !g.quiet) line('info', m, f);
    },
    warn: (m, f) => line('warning', m, f),
    error: (m, f) => line('error', m, f),
    child: (f) => cliLogger(g, { ...fields, ...f }),
  };
}

async function cluster(o: CommonFlags, g: GlobalOptions): Promise<{ s: Standalone; cc: import('../../agent/standalone/index.js').ClusterContext }> {
  const s = await import('../../agent/standalone/index.js');
  const kc = s.loadKubeConfig(o.kubeconfig);
  return { s, cc: { kube: new s.StandaloneKube(kc), veleroNamespace: o.veleroNamespace, log: cliLogger(g), credentialsDir: o.credentialsDir } };
}

function count(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new CairnError('INVALID_ARGUMENT', `${flag} must be a non-negative integer`);
  return n;
}

interface RetentionFlags {
  keepLast?: string;
  keepHourly?: string;
  keepDaily?: string;
  keepWeekly?: string;
  keepMonthly?: string;
  keepYearly?: string;
  keepWithin?: string;
  keepWithinDaily?: string;
  keepWithinWeekly?: string;
  keepWithinMonthly?: string;
}

async function retentionPolicy(o: RetentionFlags): Promise<ExpirePolicy> {
  const { parsePolicyDuration } = await import('../../engine/index.js');
  const p: ExpirePolicy = {
    last: count(o.keepLast, '--keep-last'),
    hourly: count(o.keepHourly, '--keep-hourly'),
    daily: count(o.keepDaily, '--keep-daily'),
    weekly: count(o.keepWeekly, '--keep-weekly'),
    monthly: count(o.keepMonthly, '--keep-monthly'),
    yearly: count(o.keepYearly, '--keep-yearly'),
  };
  if (o.keepWithin) p.within = parsePolicyDuration(o.keepWithin);
  if (o.keepWithinDaily) p.withinDaily = parsePolicyDuration(o.keepWithinDaily);
  if (o.keepWithinWeekly) p.withinWeekly = parsePolicyDuration(o.keepWithinWeekly);
  if (o.keepWithinMonthly) p.withinMonthly = parsePolicyDuration(o.keepWithinMonthly);
  return p;
}

function exitFor(phase: string): number {
  if (phase === 'PartiallyFailed') return EXIT.PARTIAL;
  if (phase === 'Failed') return EXIT.FATAL;
  return EXIT.OK;
}

// ---------------------------------------------------------------------------------------------

interface BackupFlags extends CommonFlags, RetentionFlags {
  namespace: string[];
  selector?: string;
  name?: string;
  schedule?: string;
  storageLocation?: string;
  defaultVolumesToFsBackup?: boolean;
  allowHostPath: string[];
  randomPassword?: boolean;
  wait?: boolean;
  timeout: string;
  prune?: boolean;
  leaseWait: string;
}

function registerBackup(k8s: Command, g: () => GlobalOptions): void {
  common(k8s.command('backup'))
    .description('back up the pod volumes of a namespace: select them by the backup.velero.io annotations, create one PodVolumeBackup per volume for the node agents, wait and summarise, apply retention')
    .option('-n, --namespace <ns>', 'namespace whose pods to back up (repeatable or comma-separated; required)', collect, [])
    .option('-l, --selector <labels>', 'only pods matching this label selector')
    .option('--name <name>', 'backup name (default: <schedule or cairn>-<UTC timestamp>)')
    .option('--schedule <name>', 'the series this backup belongs to; retention (--keep-*) applies to the backups of one series')
    .option('--storage-location <bsl>', 'backup storage location (default: the one marked default)')
    .option('--default-volumes-to-fs-backup', 'back up every volume except those in backup.velero.io/backup-volumes-excludes (and secrets, configMaps, projected, downwardAPI, service-account tokens, hostPath)')
    .option('--allow-host-path <prefix>', 'also back up hostPath volumes under this node path (repeatable; the agents need the same --allow-host-path)', collectRaw, [])
    .option('--random-password', 'give a repository this backup creates its own random password (Secret cairn-repo-<hash>) instead of the installation password')
    .option('--wait', 'wait for every volume and print a summary')
    .option('--timeout <duration>', 'how long --wait waits (like Velero\'s fs-backup timeout)', '4h')
    .option('--keep-last <n>', 'retention: keep the last n backups of the series')
    .option('--keep-hourly <n>', 'retention: keep the last n hourly backups')
    .option('--keep-daily <n>', 'retention: keep the last n daily backups')
    .option('--keep-weekly <n>', 'retention: keep the last n weekly backups')
    .option('--keep-monthly <n>', 'retention: keep the last n monthly backups')
    .option('--keep-yearly <n>', 'retention: keep the last n yearly backups')
    .option('--keep-within <duration>', 'retention: keep backups newer than this (e.g. 7d, 2m)')
    .option('--keep-within-daily <duration>', 'retention: keep daily backups within this duration')
    .option('--keep-within-weekly <duration>', 'retention: keep weekly backups within this duration')
    .option('--keep-within-monthly <duration>', 'retention: keep monthly backups within this duration')
    .option('--prune', 'prune right after the retention forget (default: the agents\' maintenance prunes)')
    .option('--lease-wait <duration>', 'how long to wait for a repository busy with maintenance before leaving the forget to the agents', '5m')
    .action(async (o: BackupFlags) => {
      const gopts = g();
      const retention = await retentionPolicy(o);
      const { s, cc } = await cluster(o, gopts);
      const text = !gopts.json && !gopts.quiet;
      const r = await withInterrupt((signal) =>
        s.runK8sBackup(cc, {
          namespaces: o.namespace,
          selector: o.selector,
          name: o.name,
          schedule: o.schedule,
          storageLocation: o.storageLocation,
          defaultVolumesToFsBackup: !!o.defaultVolumesToFsBackup,
          allowHostPaths: o.allowHostPath,
          randomPassword: !!o.randomPassword,
          wait: !!o.wait,
          timeoutMs: parseDuration(o.timeout),
          retention,
          prune: !!o.prune,
          leaseWaitMs: parseDuration(o.leaseWait),
          signal,
          clock: systemClock,
          onEvent: (e) => {
            if (!text) return;
            if (e.type === 'repository') out(`Repository of namespace ${e.namespace}: ${e.repository}${e.created ? ' (initialised now)' : ''}, password from the ${e.passwordSource === 'repository' ? "repository's own secret" : 'installation secret'}`);
            if (e.type === 'created' && (gopts.verbose ?? 0) > 0) out(`Created pod volume backup ${e.pvb} for ${e.namespace}/${e.pod} volume ${e.volume}`);
            if (e.type === 'phase' && (e.phase === 'Completed' || e.phase === 'Failed' || e.phase === 'Canceled')) out(`${e.phase}: ${e.namespace}/${e.pod} ${e.volume}${e.message ? ` (${oneLine(e.message, 200)})` : ''}`);
          },
        }),
      );
      if (gopts.json) {
        out(JSON.stringify(r));
      } else if (!gopts.quiet) {
        printBackup(r, !!o.wait);
      }
      process.exitCode = exitFor(r.phase);
    });
}

function printBackup(r: import('../../agent/standalone/index.js').BackupResult, waited: boolean): void {
  out('');
  out(`Backup ${r.name} (uid ${r.uid}) to backup storage location ${r.storageLocation}${r.schedule ? `, schedule ${r.schedule}` : ''}`);
  if (r.volumes.length) {
    columns(
      ['NAMESPACE', 'POD', 'VOLUME', 'PVC', 'NODE', 'PHASE', 'SNAPSHOT', 'SIZE', 'ADDED', 'DURATION', 'MESSAGE'],
      r.volumes.map((v) => [v.namespace, v.pod, v.volume, v.pvc ?? '', v.node, v.phase, v.snapshotID ?? '', size(v.totalBytes), size(v.addedBytes), duration(v.durationMs), oneLine(v.message)]),
    );
  }
  if (r.skipped.length) {
    out('');
    out('Skipped volumes:');
    columns(['NAMESPACE', 'POD', 'VOLUME', 'REASON'], r.skipped.map((s) => [s.namespace, s.pod, s.volume, s.reason]));
  }
  out('');
  const done = r.volumes.filter((v) => v.phase === 'Completed').length;
  const bytes = r.volumes.reduce((n, v) => n + (v.totalBytes ?? 0), 0);
  if (r.phase === 'Empty') out('No volumes selected: nothing to back up (annotate pods with backup.velero.io/backup-volumes or use --default-volumes-to-fs-backup).');
  else if (!waited) out(`Created ${r.volumes.length} pod volume backup(s); follow them with "cairn k8s describe backup ${r.name}".`);
  else out(`Backup ${r.name}: ${r.phase}${r.timedOut ? ' (timed out waiting)' : ''}; ${done} of ${r.volumes.length} volume(s) completed, ${size(bytes)}${r.completedAt ? `, ${when(r.completedAt)}` : ''}`);
  for (const x of r.retention ?? []) {
    if (x.deferred) out(`Retention (${x.namespace}): ${x.deferred}`);
    for (const s of x.schedules) out(`Retention (${x.namespace}, schedule ${s.schedule}): kept ${s.kept} backup(s)${s.removed.length ? `, forgot ${s.removed.map((b) => b.name).join(', ')}` : ''}${x.deletedPvbs ? ` (${x.deletedPvbs} pod volume backups deleted)` : ''}`);
  }
}

// ---------------------------------------------------------------------------------------------

interface RestoreFlags extends CommonFlags {
  fromBackup: string;
  namespaceMapping: string[];
  selector?: string;
  name?: string;
  inPlace?: boolean;
  wait?: boolean;
  timeout: string;
}

function registerRestore(k8s: Command, g: () => GlobalOptions): void {
  common(k8s.command('restore'))
    .description('restore backed-up pod volumes into pods that carry the restore-wait init container (or, with --in-place, into running pods)')
    .requiredOption('--from-backup <name>', 'the backup to restore (cairn\'s or Velero\'s)')
    .option('--namespace-mapping <from:to>', 'restore the volumes of namespace <from> into pods of namespace <to> (repeatable or comma-separated)', collectRaw, [])
    .option('-l, --selector <labels>', 'only pods matching this label selector')
    .option('--name <name>', 'restore name (default: <backup>-restore-<random>)')
    .option('--in-place', 'restore into the volumes of running pods (overwrites the files the snapshot holds; no init container needed)')
    .option('--wait', 'wait for every volume and print a summary')
    .option('--timeout <duration>', 'how long --wait waits', '4h')
    .action(async (o: RestoreFlags) => {
      const gopts = g();
      const { s, cc } = await cluster(o, gopts);
      const text = !gopts.json && !gopts.quiet;
      const r = await withInterrupt((signal) =>
        s.runK8sRestore(cc, {
          fromBackup: o.fromBackup,
          namespaceMapping: s.parseNamespaceMapping(o.namespaceMapping),
          selector: o.selector,
          name: o.name,
          inPlace: !!o.inPlace,
          wait: !!o.wait,
          timeoutMs: parseDuration(o.timeout),
          signal,
          clock: systemClock,
          onEvent: (e) => {
            if (!text) return;
            if (e.type === 'created' && (gopts.verbose ?? 0) > 0) out(`Created pod volume restore ${e.pvr} for ${e.namespace}/${e.pod} volume ${e.volume} (snapshot ${e.snapshotID})`);
            if (e.type === 'phase' && (e.phase === 'Completed' || e.phase === 'Failed' || e.phase === 'Canceled')) out(`${e.phase}: ${e.namespace}/${e.pod} ${e.volume}${e.message ? ` (${oneLine(e.message, 200)})` : ''}`);
          },
        }),
      );
      if (gopts.json) out(JSON.stringify(r));
      else if (!gopts.quiet) {
        out('');
        out(`Restore ${r.name} of backup ${r.backup}${r.inPlace ? ' (in place)' : ''}`);
        if (r.volumes.length) {
          columns(
            ['NAMESPACE', 'POD', 'VOLUME', 'FROM', 'SNAPSHOT', 'PHASE', 'SIZE', 'DURATION', 'MESSAGE'],
            r.volumes.map((v) => [v.namespace, v.pod, v.volume, `${v.sourceNamespace}/${v.sourcePod}`, v.snapshotID, v.phase, size(v.totalBytes), duration(v.durationMs), oneLine(v.message)]),
          );
        }
        if (r.problems.length) {
          out('');
          out('Not restored:');
          columns(['NAMESPACE', 'POD', 'VOLUME', 'REASON'], r.problems.map((p) => [p.namespace, p.pod, p.volume ?? '', p.reason]));
        }
        out('');
        if (r.phase === 'Empty') out(`No pod opted in: give the target pods the restore-wait init container (see deploy/examples/restore-target.yaml) or use --in-place.`);
        else if (!o.wait) out(`Created ${r.volumes.length} pod volume restore(s); follow them with "cairn k8s describe restore ${r.name}".`);
        else out(`Restore ${r.name}: ${r.phase}${r.timedOut ? ' (timed out waiting)' : ''}; ${r.volumes.filter((v) => v.phase === 'Completed').length} of ${r.volumes.length} volume(s) restored`);
      }
      process.exitCode = r.phase === 'Empty' ? EXIT.FATAL : exitFor(r.phase);
    });
}

// ---------------------------------------------------------------------------------------------

function registerLs(k8s: Command, g: () => GlobalOptions): void {
  common(k8s.command('ls'))
    .description('list the backups and restores of pod volumes (cairn\'s and Velero\'s), from their PodVolumeBackups/Restores')
    .argument('[kind]', 'backups or restores (default: both)')
    .action(async (kind: string | undefined, o: CommonFlags) => {
      if (kind !== undefined && !['backups', 'restores', 'backup', 'restore'].includes(kind)) throw new CairnError('INVALID_ARGUMENT', `unknown kind ${JSON.stringify(kind)}: backups or restores`);
      const gopts = g();
      const { s, cc } = await cluster(o, gopts);
      const wantBackups = !kind || kind.startsWith('backup');
      const wantRestores = !kind || kind.startsWith('restore');
      const backups = wantBackups ? await s.listBackups(cc) : undefined;
      const restores = wantRestores ? await s.listRestores(cc) : undefined;
      if (gopts.json) {
        out(JSON.stringify({ ...(backups ? { backups } : {}), ...(restores ? { restores } : {}) }));
        return;
      }
      const vols = (v: { total: number; completed: number; failed: number }) => `${v.completed}/${v.total}${v.failed ? ` (${v.failed} failed)` : ''}`;
      if (backups) {
        if (!kind) out('BACKUPS');
        columns(
          ['NAME', 'CREATED BY', 'SCHEDULE', 'PHASE', 'VOLUMES', 'SIZE', 'STARTED', 'DURATION', 'LOCATION', 'NAMESPACES'],
          backups.map((b) => [b.name, b.createdBy, b.schedule ?? '', b.phase, vols(b.volumes), size(b.totalBytes), when(b.started ?? b.created), duration(b.durationMs), b.storageLocations.join(','), b.namespaces.join(',')]),
        );
      }
      if (restores) {
        if (!kind) out('\nRESTORES');
        columns(
          ['NAME', 'CREATED BY', 'BACKUP', 'PHASE', 'VOLUMES', 'SIZE', 'STARTED', 'DURATION', 'NAMESPACES'],
          restores.map((r) => [r.name + (r.inPlace ? ' (in place)' : ''), r.createdBy, r.backup ?? '', r.phase, vols(r.volumes), size(r.totalBytes), when(r.started ?? r.created), duration(r.durationMs), r.namespaces.join(',')]),
        );
      }
    });
}

function registerDescribe(k8s: Command, g: () => GlobalOptions): void {
  common(k8s.command('describe'))
    .description('details of a backup or a restore: per pod volume its phase, snapshot, size, duration and error (like velero describe --details)')
    .argument('<kind>', 'backup or restore')
    .argument('<name>', 'its name')
    .action(async (kind: string, name: string, o: CommonFlags) => {
      if (kind !== 'backup' && kind !== 'restore') throw new CairnError('INVALID_ARGUMENT', `unknown kind ${JSON.stringify(kind)}: backup or restore`);
      const gopts = g();
      const { s, cc } = await cluster(o, gopts);
      if (kind === 'backup') {
        const d = await s.describeBackup(cc, name);
        if (gopts.json) return out(JSON.stringify(d));
        const kv: Array<[string, string]> = [
          ['Name', d.name],
          ['UID', d.uid],
          ['Created by', d.createdBy + (d.schedule ? ` (schedule ${d.schedule})` : '')],
          ['Phase', d.phase],
          ['Storage location', d.storageLocations.join(', ')],
          ['Namespaces', d.namespaces.join(', ')],
          ['Started', when(d.started)],
          ['Completed', when(d.completed)],
          ['Duration', duration(d.durationMs)],
          ['Total size', size(d.totalBytes)],
          ['Added', size(d.addedBytes)],
        ];
        for (const [k, v] of kv) out(`${(k + ':').padEnd(18)}${v}`);
        out('');
        out('Pod Volume Backups - restic:');
        for (const phase of ['Completed', 'Failed', 'Canceled', 'InProgress', 'New']) {
          const vs = d.volumeDetails.filter((v) => v.phase === phase);
          if (!vs.length) continue;
          out(`  ${phase}:`);
          for (const v of vs) {
            const facts = [v.snapshotID ? `snapshot ${v.snapshotID}` : phase === 'Completed' ? 'empty volume, no snapshot' : '', v.totalBytes ? size(v.totalBytes) : '', v.durationMs !== undefined ? duration(v.durationMs) : '', v.node ? `node ${v.node}` : '']
              .filter(Boolean)
              .join(', ');
            out(`    ${v.namespace}/${v.pod}: ${v.volume}${v.pvc ? ` (pvc ${v.pvc})` : ''}${facts ? ` — ${facts}` : ''}`);
            if (v.message && phase !== 'Completed') out(`      ${v.message}`);
          }
        }
        out('');
        columns(
          ['POD VOLUME BACKUP', 'NAMESPACE', 'POD', 'VOLUME', 'PHASE', 'SNAPSHOT', 'SIZE', 'ADDED', 'STARTED', 'DURATION', 'REPOSITORY'],
          d.volumeDetails.map((v) => [v.pvb, v.namespace, v.pod, v.volume, v.phase, v.snapshotID ?? '', size(v.totalBytes), size(v.addedBytes), when(v.startedAt), duration(v.durationMs), v.repository]),
        );
        if (d.errors.length) {
          out('');
          out('Errors:');
          for (const e of d.errors) out(`  ${e}`);
        }
      } else {
        const d = await s.describeRestore(cc, name);
        if (gopts.json) return out(JSON.stringify(d));
        const kv: Array<[string, string]> = [
          ['Name', d.name],
          ['UID', d.uid],
          ['Created by', d.createdBy + (d.inPlace ? ' (in place)' : '')],
          ['Backup', d.backup ?? ''],
          ['Phase', d.phase],
          ['Namespaces', d.namespaces.join(', ')],
          ['Started', when(d.started)],
          ['Completed', when(d.completed)],
          ['Duration', duration(d.durationMs)],
          ['Total size', size(d.totalBytes)],
        ];
        for (const [k, v] of kv) out(`${(k + ':').padEnd(18)}${v}`);
        out('');
        out('Pod Volume Restores - restic:');
        columns(
          ['POD VOLUME RESTORE', 'NAMESPACE', 'POD', 'VOLUME', 'FROM NAMESPACE', 'SNAPSHOT', 'PHASE', 'SIZE', 'STARTED', 'DURATION', 'MESSAGE'],
          d.volumeDetails.map((v) => [v.pvr, v.namespace, v.pod, v.volume, v.sourceNamespace, v.snapshotID, v.phase, size(v.totalBytes), when(v.startedAt), duration(v.durationMs), oneLine(v.message)]),
        );
        if (d.errors.length) {
          out('');
          out('Errors:');
          for (const e of d.errors) out(`  ${e}`);
        }
      }
    });
}

// ---------------------------------------------------------------------------------------------

interface MaintainFlags extends CommonFlags {
  namespace: string[];
  storageLocation?: string;
  prune: boolean;
  check?: boolean;
  readDataSubset?: string;
  maxUnused?: string;
  leaseWait: string;
  lockWait: string;
}

function registerMaintain(k8s: Command, g: () => GlobalOptions): void {
  common(k8s.command('maintain'))
    .description("maintain the repository of a namespace now, holding its Lease: forget by the recorded retention policies, prune, and optionally check")
    .option('-n, --namespace <ns>', 'volume namespace whose repository to maintain (repeatable or comma-separated; required)', collect, [])
    .option('--storage-location <bsl>', 'backup storage location (default: the one marked default)')
    .option('--no-prune', 'skip forget and prune')
    .option('--check', 'check the repository')
    .option('--read-data-subset <subset>', 'with --check: also read this part of the pack data (n/t, x% or a size)')
    .option('--max-unused <limit>', "prune's --max-unused (default 5%)")
    .option('--lease-wait <duration>', 'how long to wait while another node holds the repository\'s lease', '10m')
    .option('--lock-wait <duration>', 'how long to wait for running backups to release the repository', '30m')
    .action(async (o: MaintainFlags) => {
      const gopts = g();
      const { s, cc } = await cluster(o, gopts);
      const rs = await withInterrupt((signal) =>
        s.maintainOnce(cc, {
          namespaces: o.namespace,
          storageLocation: o.storageLocation,
          prune: o.prune,
          check: !!o.check,
          readDataSubset: o.readDataSubset,
          maxUnused: o.maxUnused,
          leaseWaitMs: parseDuration(o.leaseWait),
          retryLockMs: parseDuration(o.lockWait),
          clock: systemClock,
          signal,
        }),
      );
      if (gopts.json) out(JSON.stringify(rs));
      else if (!gopts.quiet) {
        for (const r of rs) {
          if (r.skipped) {
            out(`${r.namespace}: skipped (${r.skipped})`);
            continue;
          }
          const x = r.result!;
          const did = [x.removedSnapshots ? `forgot ${x.removedSnapshots} snapshot(s)` : '', x.deletedPvbs ? `deleted ${x.deletedPvbs} pod volume backup(s)` : '', x.pruned ? 'pruned' : '', x.checked ? `checked (${x.checked.errors} error(s), ${x.checked.packsRead} pack(s) read)` : '']
            .filter(Boolean)
            .join(', ');
          out(`${r.namespace}: ${r.repository}: ${x.error ? `failed: ${x.error}` : did || 'nothing to do'}`);
        }
      }
      if (rs.some((r) => r.result?.error || r.skipped)) process.exitCode = EXIT.FATAL;
    });
}

interface PasswordFlags extends CommonFlags {
  namespace: string;
  storageLocation?: string;
  removeOldKey?: boolean;
  leaseWait: string;
}

function registerRepoPassword(k8s: Command, g: () => GlobalOptions): void {
  common(k8s.command('repo-password'))
    .description("give an existing repository its own random password: add a key for it (restic key add), store it in Secret cairn-repo-<hash>, verify; the agents use it from then on")
    .requiredOption('-n, --namespace <ns>', 'volume namespace of the repository')
    .option('--storage-location <bsl>', 'backup storage location (default: the one marked default)')
    .option('--remove-old-key', "remove the key of the installation password afterwards (only when no Velero server uses this repository)")
    .option('--lease-wait <duration>', 'how long to wait while the repository is being maintained', '5m')
    .action(async (o: PasswordFlags) => {
      const gopts = g();
      const { s, cc } = await cluster(o, gopts);
      const r = await s.migrateRepositoryPassword(cc, { namespace: o.namespace, storageLocation: o.storageLocation, removeOldKey: !!o.removeOldKey, clock: systemClock, leaseWaitMs: parseDuration(o.leaseWait) });
      if (gopts.json) out(JSON.stringify(r));
      else if (!gopts.quiet) {
        if (r.already) out(`${r.repository} already has its own password (secret ${r.secret}).`);
        else out(`${r.repository}: added key ${r.newKeyId!.slice(0, 8)} for a new random password, stored in secret ${r.secret}.`);
        if (r.removedKeyId) out(`Removed the key of the installation password (${r.removedKeyId.slice(0, 8)}).`);
        else if (!r.already) out('The installation password still opens the repository (Velero\'s server may need it); remove its key with --remove-old-key when it does not.');
      }
    });
}

export function register(program: Command, g: () => GlobalOptions): void {
  const k8s = program
    .command('k8s')
    .description('pod volume backups, restores and repository maintenance in a Kubernetes cluster without a Velero server (Velero\'s CRDs and annotations; the node agents do the data work)');
  registerBackup(k8s, g);
  registerRestore(k8s, g);
  registerLs(k8s, g);
  registerDescribe(k8s, g);
  registerMaintain(k8s, g);
  registerRepoPassword(k8s, g);
}
