// `arb ctl reload` and `arb ctl upgrade` print the steps as they happen, and an upgrade
// ends only once the new master is promoted (issue 15).
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { arb, ctlJson } from './ctl-helpers.js';
import { ArbProcess, alive, cleanup, tempDir, waitFor } from './harness.js';

const running: ArbProcess[] = [];
const extraPids: number[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const pid of extraPids.splice(0)) {
    if (alive(pid)) process.kill(pid, 'SIGTERM');
    await waitFor(() => !alive(pid), 15_000, `pid ${pid} to exit`).catch(() => {
      if (alive(pid)) process.kill(pid, 'SIGKILL');
    });
  }
  await cleanup(running, dirs);
});

const APP = `export default (req, res) => res.end(JSON.stringify({ pid: process.pid }));\n`;

async function start(workers: number, args: string[] = []) {
  const cwd = tempDir();
  dirs.push(cwd);
  fs.writeFileSync(path.join(cwd, 'app.mjs'), APP);
  const a = new ArbProcess(['-b', '127.0.0.1:0', '-w', String(workers), ...args, 'app.mjs'], {
    cwd,
  });
  running.push(a);
  await a.ready();
  await a.log((e) => typeof e.ctl === 'string', 'Control socket listening');
  return { a, cwd };
}

const messages = (events: Record<string, unknown>[]) => events.map((e) => e.message);

describe('arb ctl reload: progress', () => {
  it('--json: one JSON line per step, then the reply as before', async () => {
    const { cwd } = await start(2);
    const r = await ctlJson(['reload'], cwd);
    expect(r.code).toBe(0);
    expect(r.body).toMatchObject({ ok: true, outcome: 'completed', generation: 1 });
    const states = r.events.map((e) => e.state);
    expect(states[0]).toBe('loading-config');
    expect(states).toContain('booting-generation');
    expect(states).toContain('retiring-old');
    expect(states.at(-1)).toBe('completed');
    for (const e of r.events) expect(e).toMatchObject({ event: 'progress', cmd: 'reload' });
    const texts = messages(r.events);
    expect(texts).toContain('generation 1 booting: 0/2 ready');
    expect(
      texts.some((m) =>
        /^generation 1 (booting: 2\/2 ready|serving \(2\/2 ready\))/.test(String(m)),
      ),
    ).toBe(true);
    expect(String(texts.at(-1))).toMatch(/^generation 0 retired; reload complete in \d+\.\d s$/);
  });

  it('without --json (not a terminal): the steps on stderr, stdout keeps the one reply', async () => {
    const { cwd } = await start(1);
    const r = await arb(['ctl', 'reload'], cwd);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: true, outcome: 'completed' });
    const lines = r.stderr.trim().split('\n');
    expect(lines[0]).toBe('arb ctl: reload 1: reading the config');
    expect(lines).toContain('arb ctl: generation 1 booting: 0/1 ready');
    expect(lines.at(-1)).toMatch(/^arb ctl: generation 0 retired; reload complete in \d+\.\d s$/);
  });

  it('a failed generation: the rollback is a step, the reply and exit status as before', async () => {
    const { cwd } = await start(1);
    fs.writeFileSync(path.join(cwd, 'app.mjs'), 'throw new Error("broken release");\n');
    const r = await ctlJson(['reload'], cwd);
    expect(r.code).toBe(1);
    expect(r.body).toMatchObject({ ok: false, outcome: 'rolled_back' });
    expect(r.events.map((e) => e.state)).toContain('rolling-back');
    expect(String(messages(r.events).at(-1))).toMatch(/^rolled back in \d+\.\d s$/);
  });
});

describe('arb ctl upgrade: waits for the promotion', () => {
  it('exits 0 only once the new master is promoted: arb.pid names it, arb.pid.2 is gone', async () => {
    const { a, cwd } = await start(2, ['--pid', 'arb.pid']);
    const r = await ctlJson(['upgrade'], cwd);
    const newPid = r.body.new_pid as number;
    if (newPid) extraPids.push(newPid);
    // checked at once, before anything else can move on
    const pidfile = fs.readFileSync(path.join(cwd, 'arb.pid'), 'utf8').trim();
    const second = fs.existsSync(path.join(cwd, 'arb.pid.2'));
    const oldAlive = alive(a.pid);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.body).toMatchObject({ ok: true, old_pid: a.pid, new_pid: newPid });
    expect(pidfile).toBe(String(newPid));
    expect(second).toBe(false);
    expect(oldAlive).toBe(false);
    expect(r.events.map((e) => e.state)).toEqual(
      expect.arrayContaining(['starting', 'retiring', 'done', 'promoting', 'promoted']),
    );
    expect(messages(r.events)).toContain(`new master ${newPid} booting`);
    expect(messages(r.events).at(-1)).toBe(`new master ${newPid} promoted; master ${a.pid} gone`);
  });

  it('a new master that cannot serve: exit 1, one clear line, the old master keeps serving', async () => {
    const { a, cwd } = await start(1);
    fs.writeFileSync(path.join(cwd, 'app.mjs'), 'throw new Error("broken release");\n');
    const r = await arb(['ctl', 'upgrade'], cwd);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: false, old_pid: a.pid });
    expect(r.stderr.trim().split('\n').at(-1)).toBe(
      `arb ctl: upgrade failed: the new master exited; master ${a.pid} keeps serving`,
    );
    expect(alive(a.pid)).toBe(true);
  });
});
