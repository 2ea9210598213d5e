/** The node agent's public surface for the CLI command. */
export { Agent, type AgentOptions, STARTUP_PVB_MESSAGE, STARTUP_PVR_MESSAGE } from './agent.js';
export { AgentState } from './state.js';
export { DEFAULTS as AGENT_DEFAULTS, MIN_PROGRESS_INTERVAL_MS, positiveInt, type AgentConfig, type KopiaItems } from './config.js';
export { loadKubeConfig } from './kube.js';
export { redactRepo } from './log.js';
export { metricsObserver } from './metrics-observer.js';
export type { AgentObserver, ItemKind } from './context.js';
