// The ctl commands (ops/ctl-handlers.ts) over a recording host: the reload waiter, scaling,
// refusals; the ctl e2e suite (apps/cli/test/ctl.e2e.test.ts) drives them through the socket.
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { Lineage } from '../src/master/lineage.js';
import type { MasterSignal } from '../src/master/wakeup.js';
import { CtlHandlers, type CtlHost, type CtlSide } from '../src/ops/ctl-handlers.js';

function host(over: Partial<CtlHost> = {}) {
  const signals: MasterSignal[] = [];
  let wakes = 0;
  const h: CtlHost & { numWorkers: number; lineage: Lineage } = {
    log: pino({ level: 'silent' }),
    pid: 77,
    lineage: { role: 'sole' },
    numWorkers: 2,
    reloader: { seq: 4 },
    signals: {
      wake: () => {
        wakes += 1;
      },
    },
    signal: (sig) => signals.push(sig),
    setNumWorkers: async (n) => {
      h.numWorkers = n;
    },
    ...over,
  };
  return { h, signals, wakes: () => wakes };
}

/** The operator side: `stopping` as given, upgrades recorded. */
function side(stopping = false) {
  const upgrades: boolean[] = [];
  const s: CtlSide = {
    stopping: () => stopping,
    status: async () => ({ master: { pid: 77 } }),
    upgradeEnded: (ok) => upgrades.push(ok),
  };
  return Object.assign(s, { upgrades });
}

const reply = async (c: CtlHandlers, line: string) => JSON.parse(await c.handleLine(line));

describe('CtlHandlers', () => {
  it('reload sends HUP and answers with the outcome of a reload begun after it', async () => {
    const { h, signals } = host();
    const c = new CtlHandlers(h, side());
    const answer = reply(c, '{"cmd":"reload","id":1}');
    await Promise.resolve();
    expect(signals).toEqual(['SIGHUP']);
    // the reload in progress when the command came (seq 4) does not answer it
    c.reloadEnded({ ok: true, outcome: 'completed', generation: 3, seq: 4 });
    c.reloadEnded({ ok: false, outcome: 'refused', generation: 3, seq: 5, error: 'bad' });
    expect(await answer).toEqual({
      id: 1,
      ok: false,
      outcome: 'refused',
      generation: 3,
      error: 'bad',
    });
  });

  it('a stopping master answers the waiting reloads with aborted, and refuses all but status', async () => {
    const { h } = host();
    const c = new CtlHandlers(h, side());
    const answer = reply(c, '{"cmd":"reload"}');
    c.abort(3);
    expect(await answer).toEqual({
      ok: false,
      outcome: 'aborted',
      generation: 3,
      error: 'the master stopped',
    });
    const stopping = new CtlHandlers(host().h, side(true));
    expect(await reply(stopping, '{"cmd":"workers","action":"add"}')).toEqual({
      ok: false,
      error: 'the master is shutting down',
    });
    expect(await reply(stopping, '{"cmd":"status"}')).toEqual({ ok: true, master: { pid: 77 } });
  });

  it('workers add/remove keep at least one and wake the loop', async () => {
    const { h, wakes } = host();
    const c = new CtlHandlers(h, side());
    expect(await reply(c, '{"cmd":"workers","action":"add","count":3}')).toEqual({
      ok: true,
      added: 3,
      previous: 2,
      total: 5,
    });
    expect(await reply(c, '{"cmd":"workers","action":"remove","count":9}')).toEqual({
      ok: true,
      removed: 4,
      previous: 5,
      total: 1,
    });
    expect(h.numWorkers).toBe(1);
    expect(wakes()).toBe(2);
  });

  it('an unpromoted master refuses to scale or reload; no upgrade without one', async () => {
    const { h, signals } = host({ lineage: { role: 'awaiting-promotion', parentPid: 9 } });
    const c = new CtlHandlers(h, side());
    expect((await reply(c, '{"cmd":"reload"}')).error).toMatch(/waits for promotion/);
    expect((await reply(c, '{"cmd":"workers","action":"add"}')).error).toMatch(
      /waits for promotion/,
    );
    expect(await reply(c, '{"cmd":"upgrade"}')).toEqual({
      ok: false,
      error: 'this master cannot upgrade',
    });
    expect(signals).toEqual([]);
  });

  it('upgrade answers with both pids; shutdown signals after its reply', async () => {
    const { h, signals } = host({
      upgrade: async (o) => ({ ok: true, newPid: 88, ...(o?.timeout ? {} : { error: 'x' }) }),
    });
    const s = side();
    const c = new CtlHandlers(h, s);
    expect(await reply(c, '{"cmd":"upgrade","timeout":5}')).toEqual({
      ok: true,
      new_pid: 88,
      old_pid: 77,
    });
    expect(s.upgrades).toEqual([true]);
    expect(await reply(c, '{"cmd":"shutdown","quick":true}')).toEqual({
      ok: true,
      mode: 'quick',
      message: 'shutting down',
    });
    expect(signals).toEqual([]);
    await new Promise((r) => setImmediate(r));
    expect(signals).toEqual(['SIGINT']);
    expect(await reply(c, '{"cmd":"nope"}')).toEqual({
      ok: false,
      error: "unknown command 'nope'",
    });
  });
});
