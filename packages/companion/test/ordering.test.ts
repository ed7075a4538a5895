import { describe, expect, it } from 'vitest';
import {
  dependentsOf,
  findCycle,
  startBlockers,
  stopChainSeconds,
  stoppable,
} from '../src/ordering.js';
import type { CompanionState } from '../src/state-machine.js';

const graph = (o: Record<string, string[]>) => new Map(Object.entries(o));

describe('findCycle', () => {
  it('finds none in a DAG', () => {
    expect(findCycle(graph({ a: [], b: ['a'], c: ['a', 'b'] }))).toBeNull();
  });
  it('returns the cycle as a closed path', () => {
    expect(findCycle(graph({ a: ['c'], b: ['a'], c: ['b'] }))).toEqual(['a', 'c', 'b', 'a']);
    expect(findCycle(graph({ x: [], a: ['a'] }))).toEqual(['a', 'a']);
    expect(findCycle(graph({ web: ['db'], db: ['cache'], cache: ['db'] }))).toEqual([
      'db',
      'cache',
      'db',
    ]);
  });
});

describe('startBlockers', () => {
  it('lists the dependencies not RUNNING, in order', () => {
    const states: Record<string, CompanionState> = { a: 'RUNNING', b: 'FATAL', c: 'STARTING' };
    const stateOf = (n: string) => states[n];
    expect(startBlockers(['a', 'b', 'c'], stateOf)).toEqual(['b', 'c']);
    expect(startBlockers(['a'], stateOf)).toEqual([]);
    expect(startBlockers([], stateOf)).toEqual([]);
    expect(startBlockers(['gone'], stateOf)).toEqual(['gone']);
  });
});

describe('stoppable', () => {
  const deps = dependentsOf(graph({ db: [], api: ['db'], worker: ['db', 'api'], lone: [] }));

  it('stops dependents first, dependencies once their dependents are gone', () => {
    const live = new Set(['db', 'api', 'worker', 'lone']);
    const has = (n: string) => live.has(n);
    expect(stoppable(['db', 'api', 'worker', 'lone'], deps, has)).toEqual(['worker', 'lone']);
    // worker and lone were stopped; while worker still has a process, api waits.
    expect(stoppable(['db', 'api'], deps, has)).toEqual([]);
    live.delete('worker');
    expect(stoppable(['db', 'api'], deps, has)).toEqual(['api']);
    live.delete('api');
    expect(stoppable(['db'], deps, has)).toEqual(['db']);
  });

  it('does not wait for dependents without a process', () => {
    // worker is in BACKOFF (no process): stopping it frees api, and api (no process) frees db.
    const live = new Set(['db']);
    expect(stoppable(['db', 'api', 'worker'], deps, (n) => live.has(n))).toEqual([
      'worker',
      'api',
      'db',
    ]);
  });
});

describe('stopChainSeconds', () => {
  it('is the longest chain of stop timeouts through dependents', () => {
    const t: Record<string, number> = { db: 10, api: 5, worker: 7, lone: 20 };
    expect(
      stopChainSeconds(graph({ db: [], api: ['db'], worker: ['api'], lone: [] }), (n) => t[n]!),
    ).toBe(22);
    expect(stopChainSeconds(graph({ db: [], lone: [] }), (n) => t[n]!)).toBe(20);
    expect(stopChainSeconds(graph({}), () => 1)).toBe(0);
  });
});
