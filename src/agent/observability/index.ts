/**
 * Observability of the node agent: metrics (Velero's names + cairn's), the HTTP endpoint serving
 * them with the liveness/readiness probes, and the redacting logger.
 *
 *   const obs = await createObservability({ node, address: ':8085', state });
 *   obs.metrics.operationStarted('backup'); …; await obs.close();
 */
import type { Registry } from 'prom-client';
import { createMetrics, type AgentMetrics } from './metrics.js';
import { parseListenAddress, startObservabilityServer, type Readiness } from './server.js';

export { createMetrics, veleroLatencyLabels, VELERO_LATENCY_BUCKETS, DURATION_BUCKETS } from './metrics.js';
export type { AgentMetrics, Operation, Outcome, OperationRecord, PodVolumeBackupRef, VeleroLatencyLabels, MetricsOptions } from './metrics.js';
export { parseListenAddress, startObservabilityServer, type ListenAddress, type Readiness, type ObservabilityServer } from './server.js';
export { createLogger, toLoggerPort, normalizeLevel, parseLogFormat, formatTextRecord, type LogFormat, type LogLevel, type LoggerOptions, type LogSink } from './logger.js';
export { redact, redactFields, redactText, isSecretKey, REDACTED } from './redact.js';

/**
 * Where readiness comes from. Either the methods of the brief (`ready()`, `reason()`) or plain
 * properties, so the agent's state object (`{ ready: boolean; reason?: string }`) fits as it is.
 */
export interface ReadinessSource {
  ready: boolean | (() => boolean);
  reason?: string | (() => string | undefined);
}

export interface ObservabilityOptions {
  /** NODE_NAME: the `node` label of every agent series. */
  node: string;
  /** Listen address, Go style (default ":8085", Velero's metrics port). Port 0 picks a free one. */
  address?: string;
  state: ReadinessSource;
  /** Also publish Velero ≤1.9's `restic_*` metric names. */
  legacyResticMetrics?: boolean;
  /** process_* / nodejs_* metrics (default true). */
  defaultMetrics?: boolean;
}

export interface Observability {
  metrics: AgentMetrics;
  registry: Registry;
  /** The bound address (useful with port 0). */
  host: string;
  port: number;
  close(): Promise<void>;
}

export const DEFAULT_METRICS_ADDRESS = ':8085';

export function readinessOf(state: ReadinessSource): Readiness {
  return {
    ready: () => (typeof state.ready === 'function' ? state.ready() : state.ready),
    reason: () => (typeof state.reason === 'function' ? state.reason() : state.reason),
  };
}

export async function createObservability(o: ObservabilityOptions): Promise<Observability> {
  const address = parseListenAddress(o.address ?? DEFAULT_METRICS_ADDRESS);
  const readiness = readinessOf(o.state);
  const { registry, metrics } = createMetrics({
    node: o.node,
    legacyResticMetrics: o.legacyResticMetrics,
    defaultMetrics: o.defaultMetrics,
    ready: readiness.ready,
  });
  const server = await startObservabilityServer({ address, registry, readiness });
  return {
    metrics,
    registry,
    host: server.host,
    port: server.port,
    close: () => server.close(),
  };
}
