/**
 * Work stops when the Backup/Restore that owns a PVB/PVR is gone or finished (contract §11.2):
 * nobody waits for the result any more.
 */
import type { AgentContext } from './context.js';
import { isNotFound } from './kube.js';
import { TERMINAL_OWNER_PHASES, controllerOwner, type ObjectMeta, type OwnerObject } from './velero.js';

export type OwnerKind = 'Backup' | 'Restore';

/** Describes why the owner no longer wants the result, or undefined when it still does (or cannot be told). */
export function ownerProblemOf(kind: OwnerKind, ref: { name: string; uid: string }, owner: OwnerObject | undefined): string | undefined {
  const what = kind.toLowerCase();
  if (!owner) return `${what} ${ref.name} no longer exists`;
  if (owner.metadata.uid && owner.metadata.uid !== ref.uid) return `${what} ${ref.name} was deleted (another ${what} with that name exists now)`;
  if (owner.metadata.deletionTimestamp) return `${what} ${ref.name} is being deleted`;
  const phase = owner.status?.phase;
  if (phase && TERMINAL_OWNER_PHASES.has(phase)) return `${what} ${ref.name} has already finished (phase ${phase})`;
  return undefined;
}

export async function checkOwner(ctx: AgentContext, kind: OwnerKind, meta: ObjectMeta): Promise<string | undefined> {
  const ref = controllerOwner(meta, kind);
  // No owner: created by `cairn k8s backup/restore` (identity in cairn.io/* labels), nothing to wait on.
  if (!ref) return undefined;
  const inf = kind === 'Backup' ? ctx.backups : ctx.restores;
  let owner = inf.get(ref.name, ctx.cfg.namespace);
  if (!owner) {
    try {
      owner = await ctx.kube.getVelero<OwnerObject>(ctx.cfg.namespace, kind === 'Backup' ? 'backups' : 'restores', ref.name);
    } catch (e) {
      // No permission or API trouble: owner checks are optional, go on.
      if (!isNotFound(e)) return undefined;
    }
  }
  return ownerProblemOf(kind, ref, owner);
}
