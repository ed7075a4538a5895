import fs from 'node:fs';
import path from 'node:path';
import { NotifyReceiver, retryOnPortInUse } from '@arb/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { ctlJson } from './ctl-helpers.js';
import { ArbProcess, alive, request, tempDir, waitFor } from './harness.js';
import { writeApp } from './load.js';
import { NotifyArrivals, statesUpToNow } from './notify-arrivals.js';
import { SLOW_BOOT_MS } from './ordering.js';

const running: ArbProcess[] = [];
const receivers: NotifyReceiver[] = [];
const clocks: NotifyArrivals[] = [];
const extraPids: number[] = [];
const dirs: string[] = [];
afterEach(async () => {
  // every step is tried even when one fails; the failures are reported after the cleanup
  const failed: unknown[] = [];
  const settle = async (steps: Promise<unknown>[]) => {
    for (const r of await Promise.allSettled(steps)) {
      if (r.status === 'rejected') failed.push(r.reason);
    }
  };
  try {
    for (const c of clocks.splice(0)) c.stop();
    // new masters started by an upgrade first: their processes are in the old one's logs
    await settle(extraPids.splice(0).map((pid) => stopPid(pid)));
    await settle(running.splice(0).map((a) => a.stop()));
    await settle(receivers.splice(0).map((r) => r.close()));
  } finally {
    for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  }
  if (failed.length > 0) throw new AggregateError(failed, 'cleanup failed');
});

/** TERM, then KILL if it is still there after a while (a cleanup: it is not our child). */
async function stopPid(pid: number): Promise<void> {
  if (alive(pid)) process.kill(pid, 'SIGTERM');
  await waitFor(() => !alive(pid), 15_000, `pid ${pid} to exit`).catch((err: Error) => {
    if (alive(pid)) process.kill(pid, 'SIGKILL');
    throw err;
  });
}

function arrivals(n: NotifyReceiver): NotifyArrivals {
  const c = new NotifyArrivals(n);
  clocks.push(c);
  return c;
}

/** The master's own last line says how it ended: status 0 is an info line, else an error. */
function cleanShutdown(a: ArbProcess, pid: number) {
  return a.log(
    (e) => e.pid === pid && String(e.msg).startsWith('Shutting down: Master'),
    `master ${pid} shutting down`,
  );
}

const APP = `export default (req, res) => res.end(JSON.stringify({ pid: process.pid }));\n`;

function project(): string {
  const d = tempDir();
  dirs.push(d);
  fs.writeFileSync(path.join(d, 'app.mjs'), APP);
  return d;
}

async function receiver(address?: string): Promise<NotifyReceiver> {
  const r = new NotifyReceiver(address);
  receivers.push(r);
  await r.ready();
  return r;
}

const RELOADING = /^RELOADING=1\nMONOTONIC_USEC=\d+\nSTATUS=Reloading$/;

describe('sd_notify', () => {
  it.each([
    ['an abstract', undefined],
    ['a path', 'notify.sock'],
  ])('sends READY, RELOADING/READY and STOPPING in order to %s address', async (_kind, file) => {
    const cwd = project();
    const n = await receiver(file ? path.join(cwd, file) : undefined);
    const a = new ArbProcess(['-b', '127.0.0.1:0', '-w', '2', 'app.mjs'], {
      cwd,
      env: { NOTIFY_SOCKET: n.address },
    });
    running.push(a);
    await a.ready();
    await waitFor(() => n.states().length >= 1, 10_000, 'READY=1');
    expect(n.states()).toEqual(['READY=1\nSTATUS=Serving with 2 workers']);
    const reload = await ctlJson(['reload'], cwd);
    expect(reload.body).toMatchObject({ ok: true, outcome: 'completed' });
    await waitFor(() => n.states().length >= 3, 10_000, 'READY=1 after the reload');
    expect(n.states()[1]).toMatch(RELOADING);
    expect(n.states()[2]).toBe('READY=1\nSTATUS=Serving with 2 workers (reloaded)');
    // a HUP from kill -HUP $MAINPID (ExecReload) says the same
    process.kill(a.pid, 'SIGHUP');
    await waitFor(() => n.states().length >= 5, 15_000, 'READY=1 after the HUP');
    expect(n.states()[3]).toMatch(RELOADING);
    expect(n.states()[4]).toBe('READY=1\nSTATUS=Serving with 2 workers (reloaded)');
    expect(await a.stop()).toBe(0);
    expect((await statesUpToNow(n)).slice(5)).toEqual(['STOPPING=1\nSTATUS=Shutting down']);
    expect(n.messages).not.toContain('WATCHDOG=1');
  });

  it('READY=1 only once every worker serves, with an app slow to import', async () => {
    const cwd = project();
    writeApp(cwd, 'v1', SLOW_BOOT_MS);
    const n = await receiver();
    const clock = arrivals(n);
    const a = new ArbProcess(['-b', '127.0.0.1:0', '-w', '2', 'app.mjs'], {
      cwd,
      env: { NOTIFY_SOCKET: n.address },
    });
    running.push(a);
    const address = (await a.listening()).find((l) => !l.startsWith('unix:'))!;
    const port = Number(address.slice(address.lastIndexOf(':') + 1));
    const ready = await waitFor(() => clock.first('READY=1'), {
      timeoutMs: 10_000,
      intervalMs: 5,
      what: 'READY=1',
    });
    // a request sent as soon as READY=1 is seen is answered without waiting for a boot ...
    // (before a worker listens a connection is refused: the master only binds)
    const sent = Date.now();
    const answer = await request({ host: '127.0.0.1', port }).then(
      (r) => `HTTP ${r.status}`,
      (err: Error) => err.message,
    );
    expect(answer, 'a request sent when READY=1 was seen').toBe('HTTP 200');
    expect(Date.now() - sent).toBeLessThan(SLOW_BOOT_MS / 2);
    // ... and the master logged "Serving" before it notified (same clock: both Date.now())
    const serving = await a.ready();
    expect(ready.at).toBeGreaterThanOrEqual(serving.time as number);
    expect(ready.message).toBe('READY=1\nSTATUS=Serving with 2 workers');
    expect(await a.stop()).toBe(0);
  });

  it('upgrade: the old master hands MAINPID over, the promoted one says MAINPID and READY', async () => {
    const cwd = project();
    const n = await receiver();
    const a = new ArbProcess(['-b', '127.0.0.1:0', '-w', '2', 'app.mjs'], {
      cwd,
      env: { NOTIFY_SOCKET: n.address },
    });
    running.push(a);
    await a.ready();
    await waitFor(() => n.states().length >= 1, 10_000, 'READY=1');
    const up = await ctlJson(['upgrade'], cwd);
    expect(up.body.ok).toBe(true);
    const newPid = up.body.new_pid as number;
    extraPids.push(newPid);
    expect(await a.exited()).toBe(0);
    await waitFor(() => n.states().length >= 3, 15_000, 'the promoted master to notify');
    expect(n.states()).toEqual([
      'READY=1\nSTATUS=Serving with 2 workers',
      `MAINPID=${newPid}\nSTATUS=Handing over to the new master ${newPid}`,
      `MAINPID=${newPid}\nREADY=1\nSTATUS=Serving with 2 workers (upgraded)`,
    ]);
    process.kill(newPid, 'SIGTERM');
    await waitFor(() => !alive(newPid), 20_000, 'the new master to stop');
    const last = await cleanShutdown(a, newPid);
    expect(last.level).toBe(30);
    expect((await statesUpToNow(n)).slice(3)).toEqual(['STOPPING=1\nSTATUS=Shutting down']);
  });

  it('pings WATCHDOG=1 every WATCHDOG_USEC/2 when WATCHDOG_USEC asks for it', async () => {
    const cwd = project();
    const n = await receiver();
    const clock = arrivals(n);
    const usecMs = 1600;
    const a = new ArbProcess(['-b', '127.0.0.1:0', 'app.mjs'], {
      cwd,
      env: { NOTIFY_SOCKET: n.address, WATCHDOG_USEC: String(usecMs * 1000) },
    });
    running.push(a);
    await a.ready();
    const pings = await waitFor(
      () => {
        const p = clock.all('WATCHDOG=1');
        return p.length >= 6 ? p : undefined;
      },
      15_000,
      '6 watchdog pings',
    );
    const gaps = pings.slice(1).map((p, i) => p.at - pings[i]!.at);
    const median = [...gaps].sort((x, y) => x - y)[Math.floor(gaps.length / 2)]!;
    // half of WATCHDOG_USEC, as sd_watchdog_enabled(3) advises: not a flood of pings ...
    expect(median, `gaps ${gaps}`).toBeGreaterThanOrEqual(usecMs * 0.4);
    expect(median, `gaps ${gaps}`).toBeLessThanOrEqual(usecMs * 0.75);
    // ... and never a gap systemd would kill the service for
    expect(Math.max(...gaps), `gaps ${gaps}`).toBeLessThan(usecMs);
    expect(await a.stop()).toBe(0);
  });

  it('does nothing without NOTIFY_SOCKET', async () => {
    const cwd = project();
    const a = new ArbProcess(['-b', '127.0.0.1:0', 'app.mjs'], { cwd });
    running.push(a);
    await a.ready();
    const status = await ctlJson(['status'], cwd);
    expect(status.body.master).toMatchObject({ systemd: { notify: false, ready_sent: true } });
    expect(a.logs.some((e) => /sd_notify/.test(String(e.msg)))).toBe(false);
  });
});

describe('socket activation under systemd-socket-activate', () => {
  it('adopts TCP and unix sockets, notifies, reloads and upgrades on them, never unlinks them', async () => {
    const cwd = project();
    const unixPath = path.join(cwd, 'web.sock');
    const n = await receiver();
    // The activator cannot be told to pick a port: retry when the free one was taken meanwhile.
    const { a, port } = await retryOnPortInUse(async (port) => {
      fs.rmSync(unixPath, { force: true });
      const a = new ArbProcess(['-w', '2', 'app.mjs'], {
        cwd,
        env: { NOTIFY_SOCKET: n.address },
        // systemd-socket-activate passes on only the variables named with -E
        wrap: [
          'systemd-socket-activate',
          '-l',
          `127.0.0.1:${port}`,
          '-l',
          unixPath,
          '-E',
          `NOTIFY_SOCKET=${n.address}`,
        ],
      });
      running.push(a);
      const listening = await Promise.race([
        waitFor(() => /Listening on/.test(a.stderr), 10_000, 'systemd-socket-activate to listen'),
        a.exited().then(() => false),
      ]);
      if (!listening) throw new Error(`systemd-socket-activate: ${a.stderr}`);
      return { a, port };
    });
    const tcp = { host: '127.0.0.1', port };
    const unix = { socketPath: unixPath };
    // the first connection starts arb
    expect((await request(tcp)).status).toBe(200);
    await a.ready();
    expect((await request(unix)).status).toBe(200);
    await waitFor(() => n.states().length >= 1, 10_000, 'READY=1');
    expect(n.states()).toEqual(['READY=1\nSTATUS=Serving with 2 workers']);
    const status = await ctlJson(['status'], cwd);
    expect(status.body.master).toMatchObject({
      pid: a.pid,
      systemd: { socket_activated: true, notify: true, ready_sent: true },
    });
    expect((status.body.listeners as unknown[]).length).toBe(2);

    const reload = await ctlJson(['reload'], cwd);
    expect(reload.body).toMatchObject({ ok: true, outcome: 'completed' });
    expect((await request(tcp)).status).toBe(200);
    expect((await request(unix)).status).toBe(200);
    expect(n.states()[1]).toMatch(RELOADING);
    expect(n.states()[2]).toBe('READY=1\nSTATUS=Serving with 2 workers (reloaded)');

    const up = await ctlJson(['upgrade'], cwd);
    expect(up.body.ok).toBe(true);
    const newPid = up.body.new_pid as number;
    extraPids.push(newPid);
    expect(await a.exited()).toBe(0);
    const served = new Set<number>();
    for (let i = 0; i < 6; i++) {
      served.add(JSON.parse((await request(i % 2 ? unix : tcp)).body).pid);
    }
    const newWorkers = (
      await waitFor(
        async () => {
          const r = await ctlJson(['status'], cwd);
          return (r.body.master as { pid?: number } | undefined)?.pid === newPid ? r : undefined;
        },
        20_000,
        'the promoted master',
      )
    ).body.workers as { pid: number }[];
    for (const pid of served) expect(newWorkers.map((w) => w.pid)).toContain(pid);
    await waitFor(() => n.states().length >= 5, 10_000, 'MAINPID notifications');
    expect(n.states().slice(3)).toEqual([
      `MAINPID=${newPid}\nSTATUS=Handing over to the new master ${newPid}`,
      `MAINPID=${newPid}\nREADY=1\nSTATUS=Serving with 2 workers (upgraded)`,
    ]);
    process.kill(newPid, 'SIGTERM');
    await waitFor(() => !alive(newPid), 20_000, 'the new master to stop');
    expect((await cleanShutdown(a, newPid)).level).toBe(30);
    // systemd's sockets are systemd's: never unlinked by arb
    expect(fs.statSync(unixPath).isSocket()).toBe(true);
    expect((await statesUpToNow(n)).slice(5)).toEqual(['STOPPING=1\nSTATUS=Shutting down']);
  });
});
