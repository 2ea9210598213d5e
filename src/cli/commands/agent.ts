import type { Command } from 'commander';
import { CairnError } from '../../core/errors.js';
// Only the light configuration module is loaded eagerly: every other command would otherwise pay
// for loading the Kubernetes client and prom-client at startup.
import { DEFAULTS as AGENT_DEFAULTS, MIN_PROGRESS_INTERVAL_MS, positiveInt, type AgentConfig, type KopiaItems, type MaintenanceConfig } from '../../agent/config.js';
import { parseDuration, type GlobalOptions } from '../context.js';

interface AgentFlags {
  kubeconfig?: string;
  nodeName?: string;
  namespace?: string;
  hostPodsDir: string;
  metricsAddress: string;
  concurrency?: string;
  perRepositoryConcurrency?: string;
  nodeAgentConfigmap?: string;
  kopiaItems: string;
  progressInterval: string;
  resyncInterval: string;
  shutdownGrace: string;
  initRepositories: boolean;
  logLevel: string;
  logFormat: string;
  credentialsDir: string;
  backupLockWait: string;
  maintenance?: boolean;
  maintenanceInterval: string;
  checkInterval: string;
  checkReadDataSubset: string;
  maxUnused?: string;
  maintenancePoll: string;
  maintenanceLeaseDuration: string;
  maintenanceLockWait: string;
  allowHostPath: string[];
  hostRoot: string;
}

export function buildConfig(o: AgentFlags, env: NodeJS.ProcessEnv): AgentConfig {
  const nodeName = o.nodeName ?? env.NODE_NAME;
  if (!nodeName) throw new CairnError('INVALID_ARGUMENT', 'no node name: use --node-name or set NODE_NAME (fieldRef spec.nodeName)');
  if (o.kopiaItems !== 'fail' && o.kopiaItems !== 'ignore') throw new CairnError('INVALID_ARGUMENT', `--kopia-items must be fail or ignore, got ${JSON.stringify(o.kopiaItems)}`);
  const progressIntervalMs = parseDuration(o.progressInterval);
  if (progressIntervalMs < MIN_PROGRESS_INTERVAL_MS) throw new CairnError('INVALID_ARGUMENT', `--progress-interval must be at least ${MIN_PROGRESS_INTERVAL_MS / 1000}s`);
  return {
    kubeconfig: o.kubeconfig,
    nodeName,
    namespace: o.namespace ?? env.VELERO_NAMESPACE ?? AGENT_DEFAULTS.namespace,
    hostPodsDir: o.hostPodsDir,
    metricsAddress: o.metricsAddress,
    concurrency: positiveInt(o.concurrency, '--concurrency') ?? AGENT_DEFAULTS.concurrency,
    perRepoConcurrency: positiveInt(o.perRepositoryConcurrency, '--per-repository-concurrency') ?? positiveInt(o.concurrency, '--concurrency') ?? AGENT_DEFAULTS.perRepoConcurrency,
    nodeAgentConfigMap: o.nodeAgentConfigmap || undefined,
    kopiaItems: o.kopiaItems as KopiaItems,
    progressIntervalMs,
    resyncIntervalMs: parseDuration(o.resyncInterval),
    shutdownGraceMs: parseDuration(o.shutdownGrace),
    initRepositories: o.initRepositories,
    logLevel: o.logLevel,
    credentialsDir: o.credentialsDir,
    retryLockMs: parseDuration(o.backupLockWait),
    allowHostPaths: o.allowHostPath?.length ? o.allowHostPath : undefined,
    hostRootDir: o.hostRoot,
    maintenance: o.maintenance ? maintenanceConfig(o) : undefined,
  };
}

/** `0` disables an interval; anything else is a duration like 168h or 30m. */
function interval(v: string, flag: string): number {
  if (v === '0') return 0;
  const ms = parseDuration(v);
  if (ms <= 0) throw new CairnError('INVALID_ARGUMENT', `${flag} must be positive (or 0 to disable)`);
  return ms;
}

function maintenanceConfig(o: AgentFlags): MaintenanceConfig {
  const leaseDurationMs = parseDuration(o.maintenanceLeaseDuration);
  if (leaseDurationMs < 3000) throw new CairnError('INVALID_ARGUMENT', '--maintenance-lease-duration must be at least 3s');
  return {
    pruneIntervalMs: interval(o.maintenanceInterval, '--maintenance-interval'),
    checkIntervalMs: interval(o.checkInterval, '--check-interval'),
    readDataSubset: o.checkReadDataSubset === '0' ? '' : o.checkReadDataSubset,
    maxUnused: o.maxUnused,
    pollMs: interval(o.maintenancePoll, '--maintenance-poll') || 1000,
    leaseDurationMs,
    retryLockMs: parseDuration(o.maintenanceLockWait),
  };
}

export function register(program: Command, _g: () => GlobalOptions): void {
  program
    .command('agent')
    .description("node agent for Velero's pod volume backups and restores (restic uploader): runs on every node as a DaemonSet")
    .option('--kubeconfig <file>', 'kubeconfig file (default: $KUBECONFIG, else the in-cluster service account)')
    .option('--node-name <name>', 'this node (default: $NODE_NAME)')
    .option('--namespace <ns>', 'Velero namespace (default: $VELERO_NAMESPACE, else velero)')
    .option('--host-pods-dir <dir>', "where the kubelet pods directory is mounted", AGENT_DEFAULTS.hostPodsDir)
    .option('--metrics-address <addr>', 'address of /metrics, /healthz and /readyz ("" disables)', AGENT_DEFAULTS.metricsAddress)
    .option('--concurrency <n>', 'pod volume backups/restores processed at once on this node (default 1, like Velero)')
    .option('--per-repository-concurrency <n>', 'items processed at once per repository (default: --concurrency)')
    .option('--node-agent-configmap <name>', "Velero node-agent ConfigMap; its loadConcurrency sets the node's concurrency")
    .option('--kopia-items <mode>', 'kopia PVBs/PVRs of this node: fail (this is the only node agent) or ignore (the stock node-agent also runs)', AGENT_DEFAULTS.kopiaItems)
    .option('--progress-interval <duration>', 'minimum time between progress updates of one object (at least 5s)', '10s')
    .option('--resync-interval <duration>', 're-examine all cached objects this often', '1m')
    .option('--shutdown-grace <duration>', 'time SIGTERM leaves for failing running items', '20s')
    .option('--no-init-repositories', 'never initialise a missing repository a repository CR asks for')
    .option('--log-level <level>', 'trace, debug, info, warning, error', AGENT_DEFAULTS.logLevel)
    .option('--log-format <format>', 'json or text', 'json')
    .option('--credentials-dir <dir>', 'where per-BSL credentials are written (mode 0600)', AGENT_DEFAULTS.credentialsDir)
    .option('--allow-host-path <prefix>', 'back up and restore hostPath volumes under this node path (repeatable; mount it at <host-root><prefix>)', (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option('--host-root <dir>', 'where the allowed node paths are mounted into the agent', '/host')
    .option('--backup-lock-wait <duration>', 'how long a pod volume backup waits while prune or check hold the repository exclusively', '30m')
    .option('--maintenance', 'maintain repositories (forget by the recorded retention policies, prune, check); a Lease per repository lets one agent at a time do it')
    .option('--maintenance-interval <duration>', 'prune this often unless the repository CR sets maintenanceFrequency (0 disables)', '168h')
    .option('--check-interval <duration>', 'check repositories this often (0 disables)', '168h')
    .option('--check-read-data-subset <subset>', 'part of the pack data the check reads: n/t, x% or a size (0: none)', AGENT_DEFAULTS.maintenance.readDataSubset)
    .option('--max-unused <limit>', "prune's --max-unused (default 5%)")
    .option('--maintenance-poll <duration>', 'how often to look for due maintenance', '5m')
    .option('--maintenance-lease-duration <duration>', 'duration of the per-repository Lease', '60s')
    .option('--maintenance-lock-wait <duration>', 'how long prune and check wait for running backups to release the repository', '30m')
    .action(async (o: AgentFlags) => {
      const { Agent, AgentState, loadKubeConfig, metricsObserver } = await import('../../agent/index.js');
      // the agent opens the same repositories for every pod volume: derive each key once
      (await import('../../engine/index.js')).rememberDerivedKeys();
      const { createObservability, createLogger, parseLogFormat, toLoggerPort } = await import('../../agent/observability/index.js');
      const config = buildConfig(o, process.env);
      const kubeConfig = loadKubeConfig(config.kubeconfig);
      const pinoLogger = createLogger({ level: config.logLevel, format: parseLogFormat(o.logFormat), base: { node: config.nodeName } });
      const logger = toLoggerPort(pinoLogger);
      const state = new AgentState();
      const obs = config.metricsAddress ? await createObservability({ node: config.nodeName, address: config.metricsAddress, state }) : undefined;
      if (obs) logger.info('serving metrics and probes', { address: `${obs.host}:${obs.port}` });
      const agent = new Agent({ config, kubeConfig, logger, state, observer: obs ? metricsObserver(obs.metrics) : undefined });

      let stopping: Promise<void> | undefined;
      const stop = (sig: NodeJS.Signals) => {
        if (stopping) return;
        logger.info('received signal, shutting down', { signal: sig });
        stopping = agent.shutdown().finally(() => obs?.close());
      };
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);
      await agent.start();
      // Runs until a signal: the informers' connections and timers keep the event loop alive.
      await new Promise<void>((resolve) => {
        const check = setInterval(() => {
          if (stopping) {
            clearInterval(check);
            void stopping.then(resolve, resolve);
          }
        }, 100);
      });
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      process.exitCode = 0;
    });
}
