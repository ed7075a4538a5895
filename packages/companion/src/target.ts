/** Split `module:export`; the export defaults to `default` when there is no colon. */
export function splitTarget(target: string): { module: string; exportName: string } {
  const i = target.lastIndexOf(':');
  // A colon that only ends a scheme prefix (`node:`, `file:`) is not the export separator.
  if (i <= 0 || /^[a-z]+:$/.test(target.slice(0, i + 1))) {
    return { module: target, exportName: 'default' };
  }
  return { module: target.slice(0, i), exportName: target.slice(i + 1) };
}
