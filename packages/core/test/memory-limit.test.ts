// `--max-memory` (memory-limit.ts): the policy's transitions driven directly, then the
// whole of it through the Arbiter with fake spawn/kill/clock and fake RSS readings:
// successor first, readiness-gated retirement, a failing successor, reloads, metrics.
import type { ProcStats } from '@arb/sock';
import { describe, expect, it } from 'vitest';
import {
  MEMORY_IDLE,
  type MemoryEvent,
  type MemoryState,
  type MemoryWorker,
  memoryDeadline,
  memoryTransition,
  type RssSample,
  SUCCESSOR_RETRY_SECONDS,
  sampleDue,
} from '../src/master/memory-limit.js';
import { WorkerTally } from '../src/ops/worker-tally.js';
import { type Fakes, fakes, makeArbiter } from './helpers.js';

const MB = 1024 * 1024;
const rss = (age: number, mb: number): RssSample => ({ age, pid: 100 + age, rssBytes: mb * MB });
const sample = (now: number, samples: RssSample[], more: Partial<MemoryEvent> = {}) =>
  ({
    type: 'sample',
    now,
    limitMb: 100,
    bootTimeout: 30,
    reloading: false,
    samples,
    ...more,
  }) as MemoryEvent;
const w = (age: number, state: MemoryWorker['state']): MemoryWorker => ({
  age,
  pid: 100 + age,
  state,
});
const step = (now: number, workers: MemoryWorker[], reloading = false): MemoryEvent => ({
  type: 'step',
  now,
  reloading,
  workers,
});

/** Feeds events in order; the state after them and every effect. */
function run(events: MemoryEvent[], from: MemoryState = MEMORY_IDLE) {
  let state = from;
  const effects = [];
  for (const e of events) {
    const t = memoryTransition(state, e);
    state = t.state;
    effects.push(...t.effects);
  }
  return { state, effects };
}

/** Worker 1 above the limit from t=10 on: replaced at t=13, successor 3 spawned. */
function replacing(): MemoryState {
  const { state } = run([
    sample(10, [rss(1, 150), rss(2, 50)]),
    sample(11, [rss(1, 160), rss(2, 50)]),
    sample(12, [rss(1, 170), rss(2, 50)]),
    sample(13, [rss(1, 180), rss(2, 50)]),
    { type: 'successor-spawned', now: 13, old: 1, successor: w(3, 'booting') },
  ]);
  return state;
}

describe('memoryTransition: the policy', () => {
  it('replaces a worker above the limit at every sample for 3 s, successor first, with the figures', () => {
    const first = run([
      sample(10, [rss(1, 150), rss(2, 50)]),
      sample(11, [rss(1, 160)]),
      sample(12, [rss(1, 170)]),
    ]);
    expect(first.effects).toEqual([]); // 2 s above: not yet
    const t = memoryTransition(first.state, sample(13, [rss(1, 312), rss(2, 50)]));
    expect(t.effects).toEqual([
      {
        type: 'log',
        level: 'warn',
        msg: 'Worker (pid:101) uses 312 MB > --max-memory 100 MB for 3 s: replacing it (successor first)',
        fields: { workerPid: 101, rssMb: 312, maxMemoryMb: 100, seconds: 3 },
      },
      { type: 'spawn-successor', old: 1 },
    ]);
    expect(t.state.replacements).toEqual([
      { old: 1, oldPid: 101, successor: undefined, successorPid: undefined, deadline: 43 },
    ]);
  });

  it('a spike is tolerated: one sample at or below the limit starts the count again', () => {
    const { effects, state } = run([
      sample(10, [rss(1, 150)]),
      sample(11, [rss(1, 150)]),
      sample(12, [rss(1, 100)]), // exactly the limit is not above it
      sample(13, [rss(1, 150)]),
      sample(14, [rss(1, 150)]),
      sample(15, [rss(1, 150)]),
    ]);
    expect(effects).toEqual([]);
    expect(state.above.get(1)).toEqual({ since: 13, rssBytes: 150 * MB });
    // a worker whose RSS could not be read (not in the sample) starts again too
    const gone = run([sample(16, [])], state);
    expect(gone.state.above.size).toBe(0);
  });

  it('one replacement at a time (the pool stays at workers + 1): the longest above goes first', () => {
    const { effects, state } = run([
      sample(10, [rss(1, 50), rss(2, 150)]),
      sample(11, [rss(1, 150), rss(2, 150)]),
      sample(14, [rss(1, 150), rss(2, 150)]),
    ]);
    expect(effects.filter((e) => e.type === 'spawn-successor')).toEqual([
      { type: 'spawn-successor', old: 2 },
    ]);
    // worker 1 is due too, but waits for this replacement to end
    const later = run([sample(15, [rss(1, 150), rss(2, 150)])], state);
    expect(later.effects).toEqual([]);
  });

  it('the successor ready: the old worker is retired (max_memory) with one line', () => {
    const t = memoryTransition(
      replacing(),
      step(14, [w(1, 'ready'), w(2, 'ready'), w(3, 'ready')]),
    );
    expect(t.effects).toEqual([
      {
        type: 'log',
        level: 'info',
        msg: 'Worker (pid:103) serves in place of worker (pid:101): draining it',
        fields: { workerPid: 101, successorPid: 103 },
      },
      { type: 'retire', age: 1, why: 'max_memory' },
    ]);
    expect(t.state.replacements).toEqual([]);
  });

  it('while the successor boots nothing happens; no second replacement of the same worker', () => {
    const s = replacing();
    const t = run(
      [
        step(14, [w(1, 'ready'), w(2, 'ready'), w(3, 'booting')]),
        sample(14, [rss(1, 200), rss(2, 50)]),
        sample(20, [rss(1, 200), rss(2, 50)]),
      ],
      s,
    );
    expect(t.effects).toEqual([]);
    expect(t.state.replacements).toHaveLength(1);
    expect(t.state.above.has(1)).toBe(false); // the old one is not counted while replaced
  });

  it('a successor that exits before it is ready is given up: the old worker serves on, retried later', () => {
    const t = memoryTransition(replacing(), step(15, [w(1, 'ready'), w(2, 'ready')]));
    expect(t.effects).toEqual([
      {
        type: 'log',
        level: 'warn',
        msg:
          'Worker (pid:101) above --max-memory keeps serving: its successor exited before it ' +
          `was ready; next attempt in ${SUCCESSOR_RETRY_SECONDS} s`,
        fields: { workerPid: 101, successorPid: 103 },
      },
    ]);
    expect(t.effects.some((e) => e.type === 'retire')).toBe(false);
    expect(t.state.replacements).toEqual([]);
    // still above, but not tried again before the retry time
    const early = run(
      [sample(16, [rss(1, 200)]), sample(19, [rss(1, 200)]), sample(24, [rss(1, 200)])],
      t.state,
    );
    expect(early.effects).toEqual([]);
    const again = run([sample(25, [rss(1, 200)])], early.state);
    expect(again.effects.at(-1)).toEqual({ type: 'spawn-successor', old: 1 });
  });

  it('a successor not ready within the boot timeout is killed; the old worker serves on', () => {
    const workers = [w(1, 'ready'), w(2, 'ready'), w(3, 'booting')];
    expect(memoryTransition(replacing(), step(42.9, workers)).effects).toEqual([]);
    const t = memoryTransition(replacing(), step(43, workers));
    expect(t.effects.map((e) => e.type)).toEqual(['log', 'kill']);
    expect(t.effects[1]).toEqual({ type: 'kill', age: 3 });
    expect(t.state.retryAt.get(1)).toBe(43 + SUCCESSOR_RETRY_SECONDS);
  });

  it('a spawn refused by the machine: the old worker serves on, retried later', () => {
    const { state } = run([
      sample(10, [rss(1, 150)]),
      sample(13, [rss(1, 150)]),
      { type: 'successor-spawned', now: 13, old: 1 },
    ]);
    expect(state.replacements).toEqual([]);
    expect(state.retryAt.get(1)).toBe(13 + SUCCESSOR_RETRY_SECONDS);
  });

  it('no replacement starts during a reload; one in flight when it begins is given up', () => {
    const during = run([
      sample(10, [rss(1, 150)], { reloading: true }),
      sample(14, [rss(1, 150)], { reloading: true }),
    ]);
    expect(during.effects).toEqual([]);
    const t = memoryTransition(replacing(), step(14, [w(1, 'ready'), w(3, 'booting')], true));
    expect(t.effects.at(-1)).toEqual({ type: 'retire', age: 3, why: 'successor_given_up' });
    expect(t.state.replacements).toEqual([]);
  });

  it('the old worker gone another way first (crash, max-requests, scale-down): the successor just stays', () => {
    for (const state of ['retiring', 'exited'] as const) {
      const workers = [w(1, state), w(3, 'booting')];
      const t = memoryTransition(replacing(), step(14, workers));
      expect(t.effects).toEqual([]);
      expect(t.state.replacements).toEqual([]);
    }
    // and once the successor is ready, nothing is retired
    const t = memoryTransition(replacing(), step(14, [w(1, 'retiring'), w(3, 'ready')]));
    expect(t.effects).toEqual([]);
  });

  it('samples on its own cadence, only when the limit is set', () => {
    expect(sampleDue(MEMORY_IDLE, 5, undefined)).toBe(false);
    expect(memoryDeadline(MEMORY_IDLE, undefined)).toBeUndefined();
    expect(sampleDue(MEMORY_IDLE, 5, 100)).toBe(true);
    const { state } = run([sample(5, [])]);
    expect(sampleDue(state, 5.9, 100)).toBe(false);
    expect(sampleDue(state, 6, 100)).toBe(true);
    expect(memoryDeadline(state, 100)).toBe(6);
    // a successor's boot deadline, limit or not
    expect(memoryDeadline(replacing(), undefined)).toBe(43);
  });

  it('the metrics count the old worker as max_memory', () => {
    const tally = new WorkerTally();
    const worker = { age: 7, aborted: false, generation: 0, exit: { code: 0, signal: null } };
    tally.outgrew(worker as never);
    expect(tally.exited(worker as never, 'retiring', { stopping: false, generation: 0 })).toBe(
      'max_memory',
    );
    // forgotten once reaped
    expect(tally.exited(worker as never, 'retiring', { stopping: false, generation: 0 })).toBe(
      'scale_down',
    );
  });
});

/** Fakes whose RSS readings are set per pid (MB). */
function withRss(): Fakes & { rssMb: Map<number, number> } {
  const f = fakes();
  const rssMb = new Map<number, number>();
  f.deps.procStats = (pid: number): ProcStats | undefined => {
    const mb = rssMb.get(pid);
    return mb === undefined ? undefined : { pid, rssBytes: mb * MB, cpuSeconds: 0, state: 'S' };
  };
  return Object.assign(f, { rssMb });
}

const ready = (f: Fakes, ...indexes: number[]) => {
  for (const i of indexes) f.children[i]!.emit('message', { type: 'ready' });
};

/** Passes of the loop, one second apart. */
async function seconds(arbiter: { pass(): Promise<void> }, f: Fakes, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    f.advance(1);
    await arbiter.pass();
  }
}

describe('--max-memory through the Arbiter', () => {
  it('spawns the successor into the slot beside the old worker, retires the old one only once it serves', async () => {
    const f = withRss();
    const { arbiter } = makeArbiter({ workers: 2, maxMemory: 100 }, f);
    await arbiter.pass();
    ready(f, 0, 1);
    f.rssMb.set(101, 150).set(102, 50);
    await seconds(arbiter, f, 3);
    expect(f.children).toHaveLength(2);
    await seconds(arbiter, f, 1);
    expect(f.children).toHaveLength(3); // the successor, pid 103
    expect(f.log.at('warn').map((l) => l.msg)).toContain(
      'Worker (pid:101) uses 150 MB > --max-memory 100 MB for 3 s: replacing it (successor first)',
    );
    const successor = arbiter.pool.all().find((x) => x.pid === 103)!;
    expect(successor.slot).toBe(arbiter.pool.all().find((x) => x.pid === 101)!.slot);
    // while it boots: 3 workers, no TERM to anyone, no further spawn
    await seconds(arbiter, f, 5);
    expect(f.children).toHaveLength(3);
    expect(f.kill).not.toHaveBeenCalled();
    ready(f, 2);
    await arbiter.pass();
    expect(f.kill.mock.calls).toEqual([[101, 'SIGTERM']]);
    f.children[0]!.die(0);
    await arbiter.pass();
    expect(arbiter.pool.live().map((x) => x.pid)).toEqual([102, 103]);
    expect(f.children).toHaveLength(3); // nothing spawned for the gone one: its successor holds the slot
  });

  it('a successor that cannot boot (exit 4) neither halts the master nor touches the old worker', async () => {
    const f = withRss();
    const { arbiter } = makeArbiter({ workers: 1, maxMemory: 100 }, f);
    await arbiter.pass();
    ready(f, 0);
    f.rssMb.set(101, 150);
    await seconds(arbiter, f, 4);
    expect(f.children).toHaveLength(2);
    f.children[1]!.die(4);
    await arbiter.pass(); // no HaltServer
    expect(f.kill).not.toHaveBeenCalled();
    expect(arbiter.pool.live().map((x) => x.pid)).toEqual([101]);
    expect(f.log.at('warn').at(-1)!.msg).toMatch(
      /Worker \(pid:101\) above --max-memory keeps serving: its successor exited before it was ready/,
    );
    // tried again once the retry time is over
    await seconds(arbiter, f, SUCCESSOR_RETRY_SECONDS + 1);
    expect(f.children).toHaveLength(3);
  });

  it('a HUP gives up a replacement in flight: the reload replaces the worker', async () => {
    const f = withRss();
    const { arbiter } = makeArbiter({ workers: 1, maxMemory: 100 }, f);
    await arbiter.pass();
    ready(f, 0);
    f.rssMb.set(101, 150);
    await seconds(arbiter, f, 4);
    expect(f.children).toHaveLength(2);
    await arbiter.handleSignal('SIGHUP');
    expect(f.kill.mock.calls[0]).toEqual([102, 'SIGTERM']); // the successor, not the old one
    expect(f.children).toHaveLength(3); // the new generation's worker
    ready(f, 2);
    await arbiter.pass();
    expect(f.kill.mock.calls.map((c) => c[0])).toEqual([102, 101]);
  });

  it('without --max-memory nothing is sampled', async () => {
    const f = withRss();
    let reads = 0;
    const read = f.deps.procStats!;
    f.deps.procStats = (pid) => {
      reads++;
      return read(pid);
    };
    const { arbiter } = makeArbiter({ workers: 1 }, f);
    await arbiter.pass();
    ready(f, 0);
    f.rssMb.set(101, 10_000);
    await seconds(arbiter, f, 5);
    expect(reads).toBe(0);
    expect(f.children).toHaveLength(1);
  });
});
