// The canary reload: its verdict from the workers' stats (canary.ts), its states in the
// reload machine (reload.ts), then the whole of it through the Arbiter with fake
// spawn/kill/clock and stats messages as the workers send them.
import { describe, expect, it, vi } from 'vitest';
import {
  CANARY_MIN_REQUESTS,
  CanaryWindow,
  emptyTally,
  judgeCanary,
  p99Of,
  type Tally,
} from '../src/master/canary.js';
import {
  absorbsHalt,
  canaryCap,
  RELOAD_IDLE,
  type ReloadEvent,
  type ReloadState,
  type ReloadWorker,
  reloadDeadline,
  reloadTransition,
} from '../src/master/reload.js';
import { LATENCY_BUCKETS, type StatsMessage } from '../src/protocol/worker.js';
import { CANARY_DEFAULTS, resolveSettings } from '../src/settings.js';
import { type Fakes, makeArbiter, UNIT_APP } from './helpers.js';

const LIMITS = { ...CANARY_DEFAULTS, seconds: 2 };
const BUCKETS = LATENCY_BUCKETS.length + 1;

/** `n` responses of `seconds` each, `errors` of them 5xx. */
function tally(n: number, seconds: number, errors = 0): Tally {
  const t = emptyTally();
  t.responses = n;
  t.errors = errors;
  const i = LATENCY_BUCKETS.findIndex((b) => seconds <= b);
  t.buckets[i < 0 ? LATENCY_BUCKETS.length : i] = n;
  return t;
}

describe('judgeCanary: the verdict from the bucket counts', () => {
  it('p99 is the bucket the 99th percentile falls in', () => {
    expect(p99Of(new Array(BUCKETS).fill(0))).toBeUndefined();
    const b = new Array(BUCKETS).fill(0);
    b[0] = 99; // <= 5 ms
    b[5] = 1; // 100..250 ms
    expect(p99Of(b)).toEqual({ lower: 0, upper: 0.005 }); // rank 99 of 100
    b[5] = 2;
    expect(p99Of(b)).toEqual({ lower: 0.1, upper: 0.25 }); // rank 100 of 101
    const inf = new Array(BUCKETS).fill(0);
    inf[BUCKETS - 1] = 5;
    expect(p99Of(inf)).toEqual({ lower: 10, upper: Infinity });
  });

  it('fails on a 5xx rate above the limit and above the old generation, naming the figures', () => {
    const v = judgeCanary(tally(212, 0.002, 104), tally(400, 0.002), LIMITS);
    expect(v).toMatchObject({ ok: false });
    expect(v.summary).toBe('canary 5xx rate 0.49 > 0.01 (old generation 0.00) over 212 requests');
    // the old generation fails as much (a database down): not the release's fault
    expect(judgeCanary(tally(212, 0.002, 104), tally(400, 0.002, 200), LIMITS).ok).toBe(true);
    // at the limit is not above it
    expect(judgeCanary(tally(100, 0.002, 1), tally(400, 0.002), LIMITS).ok).toBe(true);
    expect(judgeCanary(tally(100, 0.002, 2), tally(400, 0.002), LIMITS).ok).toBe(false);
  });

  it('fails on a p99 certainly above maxP99Ratio x the old one, never on bucket resolution', () => {
    const slow = judgeCanary(tally(100, 0.2), tally(300, 0.002), LIMITS);
    expect(slow).toMatchObject({ ok: false });
    expect(slow.summary).toBe(
      "canary p99 latency >= 0.1s > 2 x the old generation's (<= 0.005s) over 100 requests",
    );
    // one or two buckets up may be as little as 1.01x slower: not judged worse
    expect(judgeCanary(tally(100, 0.008), tally(300, 0.004), LIMITS).ok).toBe(true);
    expect(judgeCanary(tally(100, 0.02), tally(300, 0.004), LIMITS).ok).toBe(true);
    expect(judgeCanary(tally(100, 0.03), tally(300, 0.004), LIMITS).ok).toBe(false);
    // a looser ratio lets the same canary pass
    expect(judgeCanary(tally(100, 0.2), tally(300, 0.002), { ...LIMITS, maxP99Ratio: 25 }).ok).toBe(
      true,
    );
    // an old generation slower than 10 s has no upper bound: nothing is certainly slower
    expect(judgeCanary(tally(100, 20), tally(300, 20), LIMITS).ok).toBe(true);
  });

  it('passes with the figures when the canary is as good as the old generation', () => {
    const v = judgeCanary(tally(150, 0.003), tally(300, 0.004), LIMITS);
    expect(v).toMatchObject({ ok: true });
    expect(v.summary).toBe(
      '5xx rate 0.00 (old generation 0.00), p99 <= 0.005s (old generation <= 0.005s) over 150 requests',
    );
  });

  it(`fails with fewer than ${CANARY_MIN_REQUESTS} canary responses (nothing vouches for it), judges no p99 with fewer old ones`, () => {
    const few = judgeCanary(
      tally(CANARY_MIN_REQUESTS - 1, 5, CANARY_MIN_REQUESTS - 1),
      tally(300, 0.002),
      LIMITS,
    );
    expect(few).toMatchObject({ ok: false });
    expect(few.summary).toBe(
      'canary answered 19 requests in 2s, fewer than the 20 needed to judge it',
    );
    const oldFew = judgeCanary(tally(100, 5), tally(CANARY_MIN_REQUESTS - 1, 0.002), LIMITS);
    expect(oldFew).toMatchObject({ ok: true });
    expect(oldFew.summary).toMatch(/p99 not judged: the old generation answered 19 requests/);
    // the 5xx rate has an absolute limit: still judged
    expect(judgeCanary(tally(100, 0.002, 50), emptyTally(), LIMITS).ok).toBe(false);
  });

  it('the window counts each message on the side of the worker that sent it, only while open', () => {
    const win = new CanaryWindow();
    const msg = (n: number, errors: number): StatsMessage => {
      const buckets = new Array(BUCKETS).fill(0);
      buckets[1] = n;
      return {
        type: 'stats',
        requests: n,
        codes: { '2xx': n - errors, '5xx': errors },
        buckets,
        sum: 0,
      };
    };
    win.add(2, msg(7, 7)); // no window yet
    win.open(2);
    win.add(2, msg(10, 3));
    win.add(1, msg(20, 0));
    win.add(2, msg(5, 0));
    expect(win.canary).toMatchObject({ responses: 15, errors: 3 });
    expect(win.old).toMatchObject({ responses: 20, errors: 0 });
    win.close();
    win.add(2, msg(10, 10));
    expect(win.canary.responses).toBe(15);
    win.open(3); // a new window starts from nothing
    expect(win.canary.responses).toBe(0);
  });
});

describe('settings: reload.canary', () => {
  it('true gives the defaults, some numbers the rest of them, false or nothing no canary', () => {
    const of = (reload: unknown) =>
      resolveSettings({ app: 'a.js', reload } as Parameters<typeof resolveSettings>[0]).reload;
    expect(of({ canary: true })).toEqual({ canary: CANARY_DEFAULTS });
    expect(of({ canary: { seconds: 2 } })).toEqual({ canary: { ...CANARY_DEFAULTS, seconds: 2 } });
    expect(of({ canary: false })).toEqual({});
    expect(of({})).toEqual({});
    expect(() => of({ canary: { maxErrorRate: 2 } })).toThrow(
      /reload\.canary\.maxErrorRate.*0 to 1/,
    );
    expect(() => of({ canary: { workers: 0 } })).toThrow(/reload\.canary\.workers/);
    expect(() => of({ canary: { seconds: 0 } })).toThrow(/reload\.canary\.seconds/);
    expect(() => of({ canary: { maxP99Ratio: 0.5 } })).toThrow(/maxP99Ratio/);
    expect(() => of({ canary: 3 })).toThrow(/reload\.canary/);
  });
});

// ---- the machine ------------------------------------------------------------------------

const CANARY = { ...CANARY_DEFAULTS, workers: 1, seconds: 5 };
/** Reload 1 (generation 0 to 1), boot timeout 10, a canary of one worker for 5 s. */
const at = (phase: ReloadState['phase'], more: Partial<ReloadState> = {}): ReloadState => ({
  ...RELOAD_IDLE,
  phase,
  seq: 1,
  from: 0,
  target: 1,
  bootTimeout: 10,
  deadline: 110,
  canary: CANARY,
  ...more,
});
const w = (age: number, generation: number, state: ReloadWorker['state']): ReloadWorker => ({
  age,
  generation,
  state,
});
const step = (
  workers: ReloadWorker[],
  more: Partial<Extract<ReloadEvent, { type: 'step' }>> = {},
): ReloadEvent => ({ type: 'step', now: 101, generation: 1, numWorkers: 2, workers, ...more });
const OLD = [w(1, 0, 'ready'), w(2, 0, 'ready')];

describe('reloadTransition: the canary states', () => {
  it('a config with a canary boots only the canary, beside the whole old generation', () => {
    const t = reloadTransition(at('loading-config', { target: 0, canary: undefined }), {
      type: 'config-applied',
      now: 100,
      generation: 1,
      bootTimeout: 10,
      workers: 3,
      canary: { ...CANARY, workers: 2 },
    });
    expect(t.state).toMatchObject({ phase: 'booting-canary', deadline: 110, target: 1 });
    expect(canaryCap(t.state)).toBe(2);
    expect(t.effects).toEqual([
      {
        type: 'log',
        level: 'info',
        msg: 'Reloading: booting 2 canary workers of generation 1 beside generation 0 (boot timeout 10s)',
        fields: { generation: 1, workers: 3, canary: 2 },
      },
    ]);
    // no worker to judge beside: a plain reload
    const none = reloadTransition(at('loading-config', { canary: undefined }), {
      type: 'config-applied',
      now: 100,
      generation: 1,
      bootTimeout: 10,
      workers: 0,
      canary: CANARY,
    });
    expect(none.state.phase).toBe('booting-generation');
  });

  it('booting-canary: no old worker is retired; once the canary is ready the window opens', () => {
    const s = at('booting-canary');
    expect(reloadTransition(s, step([...OLD, w(3, 1, 'booting')]))).toEqual({
      state: s,
      effects: [],
    });
    const t = reloadTransition(s, step([...OLD, w(3, 1, 'ready')], { now: 103 }));
    expect(t.state).toMatchObject({ phase: 'canary-window', deadline: 108 });
    expect(t.effects).toEqual([
      { type: 'open-canary-window' },
      {
        type: 'log',
        level: 'info',
        msg: 'Canary: 1 worker of generation 1 serving beside generation 0 for 5s',
        fields: { generation: 1, canary: 1, seconds: 5 },
      },
    ]);
    expect(canaryCap(t.state)).toBe(1);
  });

  it('booting-canary: a canary that exits 3/4 or is not ready in time is rolled back', () => {
    const s = at('booting-canary');
    expect(absorbsHalt(s, 1)).toBe(true);
    expect(absorbsHalt(s, 0)).toBe(false);
    const halted = reloadTransition(s, { type: 'worker-halted', generation: 1, reason: 'exit 4' });
    const t = reloadTransition(halted.state, step([...OLD, w(3, 1, 'booting')]));
    expect(t.state).toMatchObject({
      phase: 'rolling-back',
      counts: { failed: 1, canaryFailed: 0 },
    });
    expect(t.effects).toEqual([
      {
        type: 'log',
        level: 'error',
        msg:
          'Reload failed: the canary did not boot: a worker of the new generation exited: exit 4; ' +
          'generation 1 stopped, generation 0 keeps serving',
        fields: {
          generation: 1,
          reason: 'the canary did not boot: a worker of the new generation exited: exit 4',
        },
      },
      { type: 'restore-config' },
      { type: 'retire', age: 3 },
    ]);
    const late = reloadTransition(s, step([...OLD, w(3, 1, 'booting')], { now: 110 }));
    expect(late.state.phase).toBe('rolling-back');
    expect(late.effects[0]).toMatchObject({
      msg: expect.stringMatching(
        /^Reload failed: the canary was not ready within 10s \(0\/1 ready\);/,
      ),
    });
  });

  it('canary-window: waits for its end, then asks for the verdict', () => {
    const s = at('canary-window', { deadline: 108 });
    const workers = [...OLD, w(3, 1, 'ready')];
    expect(reloadTransition(s, step(workers, { now: 107.9 }))).toEqual({ state: s, effects: [] });
    expect(reloadTransition(s, step(workers, { now: 108 }))).toEqual({
      state: s,
      effects: [{ type: 'judge-canary' }],
    });
    expect(reloadDeadline(s)).toBe(108);
    expect(absorbsHalt(s, 1)).toBe(true);
    // the verdict is only taken in the window
    const judged: ReloadEvent = {
      type: 'canary-judged',
      now: 108,
      workers,
      ok: true,
      summary: 'x',
    };
    for (const phase of ['idle', 'booting-canary', 'booting-generation'] as const) {
      expect(reloadTransition(at(phase), judged).effects).toEqual([]);
    }
  });

  it('a passed canary goes on to boot the rest, retiring old workers one for one', () => {
    const workers = [...OLD, w(3, 1, 'ready')];
    const t = reloadTransition(at('canary-window', { deadline: 108 }), {
      type: 'canary-judged',
      now: 108,
      workers,
      ok: true,
      summary: '5xx rate 0.00 (old generation 0.00) over 50 requests',
      fields: { canary: { requests: 50 } },
    });
    expect(t.state).toMatchObject({ phase: 'booting-generation', deadline: 118 });
    expect(canaryCap(t.state)).toBeUndefined();
    expect(t.effects).toEqual([
      {
        type: 'log',
        level: 'info',
        msg:
          'Canary passed: 5xx rate 0.00 (old generation 0.00) over 50 requests; ' +
          'booting the rest of generation 1',
        fields: { generation: 1, canary: { requests: 50 } },
      },
    ]);
    // with the canary ready, one old worker may go at once
    const next = reloadTransition(t.state, step(workers, { now: 108 }));
    expect(next.effects).toEqual([{ type: 'retire', age: 1 }]);
  });

  it('a failed canary is retired with one line naming the figures; the outcome says canary_failed', () => {
    const summary = 'canary 5xx rate 0.49 > 0.01 (old generation 0.00) over 212 requests';
    const t = reloadTransition(at('canary-window', { pending: true }), {
      type: 'canary-judged',
      now: 108,
      workers: [...OLD, w(3, 1, 'ready')],
      ok: false,
      summary,
      fields: { canary: { requests: 212 } },
    });
    expect(t.state).toMatchObject({
      phase: 'rolling-back',
      deadline: 118,
      verdict: summary,
      counts: { failed: 1, canaryFailed: 1 },
    });
    expect(t.effects).toEqual([
      {
        type: 'log',
        level: 'error',
        msg: `Reload failed: ${summary}; generation 0 keeps serving`,
        fields: { generation: 1, canary: { requests: 212 } },
      },
      { type: 'restore-config' },
      { type: 'retire', age: 3 },
    ]);
    const gone = reloadTransition(t.state, step(OLD, { generation: 0 }));
    expect(gone.state).toMatchObject({ phase: 'idle', pending: false });
    expect(gone.effects).toEqual([
      {
        type: 'ended',
        outcome: {
          ok: false,
          outcome: 'canary_failed',
          generation: 0,
          seq: 1,
          error: `${summary}; rolled back, the old generation keeps serving`,
        },
      },
      { type: 'request-reload' }, // the HUP that came during the window
    ]);
    // the next reload starts with no verdict
    const again = reloadTransition(gone.state, { type: 'hup', generation: 0 });
    expect(again.state).toMatchObject({ verdict: undefined, canary: undefined, seq: 2 });
  });

  it('HUPs during the canary are coalesced into one more reload after it', () => {
    for (const phase of ['booting-canary', 'canary-window'] as const) {
      const t = reloadTransition(at(phase), { type: 'hup', generation: 1 });
      expect(t.state).toEqual({ ...at(phase), pending: true });
    }
  });
});

// ---- through the Arbiter ----------------------------------------------------------------

const ready = (f: Fakes, ...indexes: number[]) => {
  for (const i of indexes) f.children[i]!.emit('message', { type: 'ready' });
};
/** One worker's stats message: `n` responses in bucket `bucket`, `errors` of them 5xx. */
const stats = (f: Fakes, i: number, n: number, errors = 0, bucket = 0) => {
  const buckets = new Array(BUCKETS).fill(0);
  buckets[bucket] = n;
  f.children[i]!.emit('message', {
    type: 'stats',
    requests: n,
    codes: { '2xx': n - errors, '5xx': errors },
    buckets,
    sum: 0,
  });
};
const withCanary = (canary: object, more: object = {}) =>
  vi.fn(async () => ({ app: UNIT_APP, workers: 2, reload: { canary }, ...more }));

describe('canary reload through the Arbiter', () => {
  it('a good canary: one new worker beside both old ones, judged, then the rest roll forward', async () => {
    const { arbiter, f } = make({ workers: 2, reloadConfig: withCanary({ seconds: 5 }) });
    await arbiter.pool.manage();
    ready(f, 0, 1);
    await arbiter.handleSignal('SIGHUP');
    expect(arbiter.reloader.phase).toBe('booting-canary');
    expect(f.children).toHaveLength(3); // 2 old + 1 canary, not 2 new
    ready(f, 2);
    await arbiter.pass();
    expect(arbiter.reloader.phase).toBe('canary-window');
    expect(f.kill).not.toHaveBeenCalled();
    expect(f.children).toHaveLength(3);
    stats(f, 0, 40);
    stats(f, 1, 40);
    stats(f, 2, 40);
    f.advance(4.9);
    await arbiter.pass();
    expect(arbiter.reloader.phase).toBe('canary-window');
    expect(arbiter.reloader.nextDeadline()).toBeCloseTo(1005, 5);
    f.advance(0.1);
    await arbiter.pass();
    expect(f.log.at('info').map((l) => l.msg)).toContain(
      '5xx rate 0.00 (old generation 0.00), p99 <= 0.005s (old generation <= 0.005s) over 40 requests'
        .replace(/^/, 'Canary passed: ')
        .concat('; booting the rest of generation 1'),
    );
    expect(arbiter.reloader.phase).toBe('booting-generation');
    expect(f.children).toHaveLength(4); // the rest of the new generation
    expect(f.kill.mock.calls).toEqual([[101, 'SIGTERM']]); // the canary replaces one at once
    ready(f, 3);
    await arbiter.pass();
    expect(f.kill.mock.calls).toEqual([
      [101, 'SIGTERM'],
      [102, 'SIGTERM'],
    ]);
    f.children[0]!.die(0);
    f.children[1]!.die(0);
    await arbiter.pass();
    expect(arbiter.reloader.phase).toBe('idle');
    expect(arbiter.reloader.state.counts).toMatchObject({ completed: 1, canaryFailed: 0 });
  });

  it('a canary answering 5xx is retired, the old generation and config stay, one line says why', async () => {
    const { arbiter, f } = make({
      workers: 2,
      reloadConfig: withCanary({ seconds: 5 }, { timeout: 9 }),
    });
    const ended = vi.spyOn(arbiter.control, 'reloadEnded');
    await arbiter.pool.manage();
    ready(f, 0, 1);
    stats(f, 0, 30); // before the window: not counted
    await arbiter.handleSignal('SIGHUP');
    ready(f, 2);
    await arbiter.pass();
    stats(f, 2, 20, 10);
    stats(f, 2, 10, 5);
    stats(f, 0, 50, 1);
    stats(f, 1, 50);
    f.advance(5);
    await arbiter.pass();
    const failed = f.log.lines.filter((l) => l.msg.startsWith('Reload failed: canary '));
    expect(failed.map((l) => l.msg)).toEqual([
      'Reload failed: canary 5xx rate 0.50 > 0.01 (old generation 0.01) over 30 requests; generation 0 keeps serving',
    ]);
    expect(failed[0]).toMatchObject({ level: 50, canary: { requests: 30, errors: 15 } });
    expect(arbiter.reloader.phase).toBe('rolling-back');
    expect(arbiter.settings.timeout).toBe(2); // the old config is back
    expect(arbiter.generation).toBe(0);
    expect(f.kill.mock.calls).toEqual([[103, 'SIGTERM']]); // only the canary
    f.children[2]!.die(0);
    await arbiter.pass();
    expect(arbiter.reloader.phase).toBe('idle');
    expect(f.children).toHaveLength(3); // nothing else spawned: the old two serve on
    expect(ended).toHaveBeenCalledWith(
      expect.objectContaining({ ok: false, outcome: 'canary_failed', generation: 0 }),
    );
  });

  it('a config that drops the canary reloads without one; one that adds it gets one at once', async () => {
    let canary: object | false = false;
    const reloadConfig = vi.fn(async () => ({ app: UNIT_APP, workers: 2, reload: { canary } }));
    const { arbiter, f } = make({ workers: 2, reload: { canary: true }, reloadConfig });
    await arbiter.pool.manage();
    ready(f, 0, 1);
    await arbiter.handleSignal('SIGHUP');
    expect(arbiter.reloader.phase).toBe('booting-generation');
    expect(f.children).toHaveLength(4);
    ready(f, 2, 3);
    await arbiter.pass();
    f.children[0]!.die(0);
    f.children[1]!.die(0);
    await arbiter.pass();
    expect(arbiter.reloader.phase).toBe('idle');
    canary = { workers: 5, seconds: 1 }; // more canary workers than workers: all of them
    await arbiter.handleSignal('SIGHUP');
    expect(arbiter.reloader.phase).toBe('booting-canary');
    expect(f.children).toHaveLength(6);
    ready(f, 4, 5);
    await arbiter.pass();
    expect(arbiter.reloader.phase).toBe('canary-window');
    f.advance(1);
    await arbiter.pass(); // no traffic: nothing vouches for the release
    expect(f.log.at('error').map((l) => l.msg)).toContain(
      'Reload failed: canary answered 0 requests in 1s, fewer than the 20 needed to judge it; ' +
        'generation 1 keeps serving',
    );
    expect(arbiter.reloader.phase).toBe('rolling-back');
    expect(f.kill.mock.calls.slice(-2)).toEqual([
      [105, 'SIGTERM'],
      [106, 'SIGTERM'],
    ]);
  });

  it('TERM during the canary window stops every worker, canary and old', async () => {
    const { arbiter, f } = make({ workers: 2, reloadConfig: withCanary({ seconds: 30 }) });
    await arbiter.pool.manage();
    ready(f, 0, 1);
    await arbiter.handleSignal('SIGHUP');
    ready(f, 2);
    await arbiter.pass();
    expect(arbiter.reloader.phase).toBe('canary-window');
    const stopping = arbiter.halt('', 0, true);
    await vi.waitFor(() => expect(f.kill.mock.calls.length).toBe(3));
    expect(f.kill.mock.calls.map((c) => c[1])).toEqual(['SIGTERM', 'SIGTERM', 'SIGTERM']);
    for (const c of f.children) c.die(0);
    expect(await stopping).toBe(0);
  });
});

function make(config: Record<string, unknown>) {
  return makeArbiter(config);
}
