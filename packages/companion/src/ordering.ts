/**
 * Start and stop order from `dependsOn`, as pure functions of names and states (no
 * processes, no clocks): a companion starts once everything it depends on is RUNNING, and
 * at a graceful stop it goes before what it depends on.
 */
import type { CompanionState } from './state-machine.js';

/** Each node's dependencies (names); every name must be a key. */
export type DependencyGraph = ReadonlyMap<string, readonly string[]>;

/**
 * A dependency cycle as a path that ends where it starts (`['a', 'b', 'a']`), or null.
 * Nodes are visited in map order so the cycle reported is always the same one.
 */
export function findCycle(graph: DependencyGraph): string[] | null {
  const done = new Set<string>();
  const onPath: string[] = [];
  const visit = (node: string): string[] | null => {
    const at = onPath.indexOf(node);
    if (at >= 0) return [...onPath.slice(at), node];
    if (done.has(node)) return null;
    onPath.push(node);
    for (const dep of graph.get(node) ?? []) {
      const cycle = visit(dep);
      if (cycle) return cycle;
    }
    onPath.pop();
    done.add(node);
    return null;
  };
  for (const node of graph.keys()) {
    const cycle = visit(node);
    if (cycle) return cycle;
  }
  return null;
}

/** The dependencies that keep a companion from starting: those not RUNNING, in order. */
export function startBlockers(
  dependsOn: readonly string[],
  stateOf: (name: string) => CompanionState | undefined,
): string[] {
  return dependsOn.filter((d) => stateOf(d) !== 'RUNNING');
}

/** Reverse edges: for each name, the names that depend on it (in graph order). */
export function dependentsOf(graph: DependencyGraph): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const name of graph.keys()) out.set(name, []);
  for (const [name, deps] of graph) {
    for (const d of deps) out.get(d)?.push(name);
  }
  return out;
}

/**
 * Which of `pending` (companions waiting to be stopped, in order) may be stopped now: those
 * none of whose dependents is still pending or still has a process. Computed to a fixed
 * point, since stopping one without a process (BACKOFF, FATAL) frees its dependencies at once.
 */
export function stoppable(
  pending: readonly string[],
  dependents: ReadonlyMap<string, readonly string[]>,
  hasProcess: (name: string) => boolean,
): string[] {
  const waiting = new Set(pending);
  const ready: string[] = [];
  let changed = true;
  while (changed) {
    changed = false;
    for (const name of pending) {
      if (!waiting.has(name)) continue;
      const blocked = (dependents.get(name) ?? []).some((d) => waiting.has(d) || hasProcess(d));
      if (blocked) continue;
      waiting.delete(name);
      ready.push(name);
      // Stopping a companion without a process leaves nothing to wait for.
      if (!hasProcess(name)) changed = true;
    }
  }
  return ready;
}

/**
 * Seconds a graceful stop of everything may take when dependents go first: the longest
 * chain of stop timeouts from a companion through its dependents (0 for an empty graph).
 */
export function stopChainSeconds(
  graph: DependencyGraph,
  stopTimeout: (name: string) => number,
): number {
  const dependents = dependentsOf(graph);
  const memo = new Map<string, number>();
  const cost = (name: string): number => {
    const known = memo.get(name);
    if (known !== undefined) return known;
    const after = Math.max(0, ...(dependents.get(name) ?? []).map(cost));
    const total = stopTimeout(name) + after;
    memo.set(name, total);
    return total;
  };
  return Math.max(0, ...[...graph.keys()].map(cost));
}
