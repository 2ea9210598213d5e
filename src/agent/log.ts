/** Log helpers of the agent (the logger itself lives in observability/logger.ts). */

/** Removes userinfo (user:password@) from a repository identifier or URL before it is logged. */
export function redactRepo(id: string | undefined): string | undefined {
  if (!id) return id;
  return id.replace(/(\b[a-z][a-z0-9+.-]*:\/\/)([^/@\s]+)@/gi, '$1***@');
}
