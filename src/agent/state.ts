/**
 * What the agent knows about its own health, for /readyz and logs. `ready` is false (with a reason)
 * until the caches are synced and the host pods directory matches the pods kubelet runs here; the
 * agent does not claim work while it is not ready.
 */
export class AgentState {
  ready = false;
  reason?: string = 'starting';
  /** Items being processed right now (PVB and PVR). */
  running = 0;
  /** Items waiting for a concurrency slot. */
  queued = 0;
  shuttingDown = false;
  private readonly listeners = new Set<(s: AgentState) => void>();

  setReady(ready: boolean, reason?: string): void {
    const changed = ready !== this.ready || reason !== this.reason;
    this.ready = ready;
    this.reason = ready ? undefined : reason;
    if (changed) for (const l of this.listeners) l(this);
  }

  onChange(fn: (s: AgentState) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  toJSON(): { ready: boolean; reason?: string; running: number; queued: number; shuttingDown: boolean } {
    return { ready: this.ready, reason: this.reason, running: this.running, queued: this.queued, shuttingDown: this.shuttingDown };
  }
}
