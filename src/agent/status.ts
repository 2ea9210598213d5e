/**
 * Status writes for one PVB/PVR. The contract's hard rule (§2.9): exactly one write carries the
 * terminal phase and nothing is written after it. Every write after the claim is a JSON patch that
 * first tests `status.phase == InProgress`, so a progress write can never land after a terminal
 * write, and our terminal write never lands on an item someone else (a restarted agent, a second
 * agent during a rolling update) already finished. Progress writes are rate limited per object.
 */
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import { apiErrorMessage, apiStatus, isConflict, isNotFound, type JsonPatchOp, type KubeClient } from './kube.js';
import { kubeTime, type ObjectMeta, type Phase, type PodVolumeStatus, type Progress } from './velero.js';

export type WriteResult = 'written' | 'gone' | 'conflict' | 'error';

interface StatusObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  status?: PodVolumeStatus;
}

const KINDS: Record<string, string> = { podvolumebackups: 'PodVolumeBackup', podvolumerestores: 'PodVolumeRestore' };

/** A copy for a PUT: list items may lack apiVersion/kind, which the API server needs in the body. */
function forUpdate<T extends StatusObject>(plural: string, obj: T): T {
  const body = structuredClone(obj);
  body.apiVersion ??= 'velero.io/v1';
  body.kind ??= KINDS[plural];
  return body;
}

/** A test of the current phase followed by one `add` per field (add replaces existing members). */
export function phaseGuardedPatch(expected: Phase, fields: PodVolumeStatus): JsonPatchOp[] {
  const ops: JsonPatchOp[] = [{ op: 'test', path: '/status/phase', value: expected }];
  for (const [k, v] of Object.entries(fields)) if (v !== undefined) ops.push({ op: 'add', path: `/status/${k}`, value: v });
  return ops;
}

/**
 * Claims an item: PUT of the observed object (its resourceVersion makes a concurrent claim fail
 * with 409) with phase InProgress and the start time.
 */
export async function claim<T extends StatusObject>(kube: KubeClient, plural: string, obj: T, nowMs: number): Promise<T | undefined> {
  const body = forUpdate(plural, obj);
  body.status = { ...(body.status ?? {}), phase: 'InProgress', startTimestamp: kubeTime(nowMs) };
  try {
    return await kube.replaceVelero(plural, body);
  } catch (e) {
    if (isConflict(e) || isNotFound(e)) return undefined;
    throw e;
  }
}

/** Fails an item that was never claimed (e.g. a kopia item), with the same optimistic concurrency as a claim. */
export async function failUnclaimed<T extends StatusObject>(kube: KubeClient, plural: string, obj: T, message: string, nowMs: number): Promise<WriteResult> {
  const body = forUpdate(plural, obj);
  const now = kubeTime(nowMs);
  body.status = { ...(body.status ?? {}), phase: 'Failed', message, startTimestamp: body.status?.startTimestamp ?? now, completionTimestamp: now };
  try {
    await kube.replaceVelero(plural, body);
    return 'written';
  } catch (e) {
    if (isConflict(e)) return 'conflict';
    if (isNotFound(e)) return 'gone';
    throw e;
  }
}

async function guardedWrite(kube: KubeClient, plural: string, meta: ObjectMeta, fields: PodVolumeStatus): Promise<WriteResult> {
  try {
    await kube.jsonPatchVelero(meta.namespace!, plural, meta.name!, phaseGuardedPatch('InProgress', fields));
    return 'written';
  } catch (e) {
    if (isNotFound(e)) return 'gone';
    // A failed JSON patch test is 422 (Invalid) on a real API server; a 409 is a conflict too.
    if (apiStatus(e) === 422 || isConflict(e)) return 'conflict';
    throw e;
  }
}

/** Marks an InProgress item Failed (startup recovery), unless it moved on meanwhile. */
export async function failInProgress(kube: KubeClient, plural: string, meta: ObjectMeta, message: string, nowMs: number): Promise<WriteResult> {
  return guardedWrite(kube, plural, meta, { phase: 'Failed', message, completionTimestamp: kubeTime(nowMs) });
}

export class StatusWriter {
  private chain: Promise<unknown> = Promise.resolve();
  private latest?: Progress;
  private written?: Progress;
  private lastWriteMs = 0;
  private timer?: { cancel(): void };
  private finished = false;
  /** Set when a write found the object deleted. */
  gone = false;

  constructor(
    private readonly kube: KubeClient,
    private readonly plural: string,
    private readonly meta: ObjectMeta,
    private readonly clock: Clock,
    private readonly intervalMs: number,
    private readonly log: Logger,
  ) {}

  get isFinished(): boolean {
    return this.finished;
  }

  /** Records progress; it reaches the API at most once per interval, and only when bytesDone > 0. */
  progress(p: Progress): void {
    if (this.finished) return;
    this.latest = { ...p };
    if (!this.timer) this.schedule();
  }

  private schedule(): void {
    const wait = Math.max(0, this.lastWriteMs + this.intervalMs - this.clock.now());
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      this.chain = this.chain.then(() => this.flushProgress());
    }, Math.max(wait, this.lastWriteMs === 0 ? this.intervalMs : 0));
  }

  private async flushProgress(): Promise<void> {
    if (this.finished || !this.latest) return;
    const p = this.latest;
    if (!p.bytesDone || (this.written && this.written.bytesDone === p.bytesDone && this.written.totalBytes === p.totalBytes)) return;
    this.lastWriteMs = this.clock.now();
    try {
      const r = await guardedWrite(this.kube, this.plural, this.meta, { progress: progressField(p) });
      if (r === 'written') this.written = p;
      if (r === 'gone') this.gone = true;
    } catch (e) {
      this.log.warn('progress update failed', { error: apiErrorMessage(e) });
    }
  }

  /** The single terminal write. Later calls (and progress) are ignored. */
  async finish(fields: PodVolumeStatus & { phase: Phase }, nowMs: number): Promise<WriteResult> {
    if (this.finished) return 'conflict';
    this.finished = true;
    this.timer?.cancel();
    await this.chain.catch(() => undefined);
    const status: PodVolumeStatus = { ...fields, completionTimestamp: kubeTime(nowMs) };
    if (status.progress) status.progress = progressField(status.progress);
    for (let attempt = 0; ; attempt++) {
      try {
        const r = await guardedWrite(this.kube, this.plural, this.meta, status);
        if (r === 'gone') this.gone = true;
        return r;
      } catch (e) {
        // Transient API failures must not leave the item InProgress: retry a few times.
        if (attempt >= 4) {
          this.log.error('terminal status write failed', { error: apiErrorMessage(e), phase: fields.phase });
          return 'error';
        }
        await this.clock.sleep(500 * 2 ** attempt);
      }
    }
  }
}

/** Velero omits zero progress fields. */
export function progressField(p: Progress): Progress {
  const out: Progress = {};
  if (p.totalBytes) out.totalBytes = p.totalBytes;
  if (p.bytesDone) out.bytesDone = p.bytesDone;
  return out;
}
