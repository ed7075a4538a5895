// A log that cannot be written never stops supervision or serving (issue 13, items 1-2):
// /dev/full for the disk-full error, a real full tmpfs that recovers, and logrotate's
// `mv` + USR1 with workers running as nobody.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ctlJson } from './ctl-helpers.js';
import { ArbProcess, cleanup, request, type Target, tempDir, waitFor } from './harness.js';
import { LoadLoop, writeApp } from './load.js';

const running: ArbProcess[] = [];
const dirs: string[] = [];
const loops: LoadLoop[] = [];
const mounts: string[] = [];
afterEach(() =>
  cleanup(running, dirs, [
    ...loops.splice(0).map((l) => () => l.stop()),
    ...mounts.splice(0).map((m) => async () => execFileSync('umount', ['-l', m])),
  ]),
);

const root = process.getuid?.() === 0;
if (!root) console.log('skipped: the tmpfs and privilege-drop log tests need root');

function project(mode = 0o700): string {
  const dir = tempDir();
  dirs.push(dir);
  fs.chmodSync(dir, mode);
  writeApp(dir, 'v1');
  fs.chmodSync(path.join(dir, 'app.mjs'), 0o644);
  return dir;
}

async function workerPids(cwd: string): Promise<number[]> {
  const r = await ctlJson(['status'], cwd);
  return (r.body.workers as { pid: number }[]).map((w) => w.pid).sort();
}

/** kill -9 of one worker; resolves once the master has replaced it (seen through ctl). */
async function killOneAndWaitReplaced(a: ArbProcess, cwd: string): Promise<void> {
  const pids = await workerPids(cwd);
  for (const p of pids) a.pids.add(p);
  process.kill(pids[0]!, 'SIGKILL');
  await waitFor(
    async () => {
      const now = await workerPids(cwd);
      return now.length === pids.length && !now.includes(pids[0]!);
    },
    10_000,
    'a replacement worker',
  );
  for (const p of await workerPids(cwd)) a.pids.add(p);
}

async function metric(url: string, name: string): Promise<number> {
  const body = await new Promise<string>((resolve, reject) => {
    http
      .get(`${url}/metrics`, (res) => {
        let b = '';
        res.setEncoding('utf8').on('data', (d: string) => {
          b += d;
        });
        res.on('end', () => resolve(b));
      })
      .on('error', reject);
  });
  const line = body.split('\n').find((l) => l.startsWith(name));
  return line ? Number(line.split(' ').at(-1)) : Number.NaN;
}

describe('a log destination that fails', () => {
  it('--access-log /dev/full: every request is served, no worker dies, the drops are counted', async () => {
    const cwd = project();
    const a = new ArbProcess(
      [
        '-w',
        '2',
        '-b',
        '127.0.0.1:0',
        '--access-log',
        '/dev/full',
        '--metrics-bind',
        '127.0.0.1:0',
        'app.mjs',
      ],
      { cwd },
    );
    running.push(a);
    const target = await a.tcpTarget();
    const before = await workerPids(cwd);
    const statuses: number[] = [];
    for (let i = 0; i < 200; i++) statuses.push((await request(target)).status);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    expect(await workerPids(cwd)).toEqual(before);
    // one warning per process and minute, not one per line
    const warnings = a.stderr.split('\n').filter((l) => l.includes('cannot write the log'));
    expect(warnings.length).toBeGreaterThanOrEqual(1);
    expect(warnings.length).toBeLessThanOrEqual(2);
    expect(warnings[0]).toMatch(/cannot write the log to \/dev\/full: ENOSPC; 1 line\(s\) dropped/);
    const url = (await ctlJson(['status'], cwd)).body.master as { metrics: string };
    await waitFor(
      async () => (await metric(url.metrics, 'arb_log_lines_dropped_total{proc="worker"}')) >= 200,
      10_000,
      'the workers to report 200 dropped access lines',
    );
    expect(await a.stop()).toBe(0);
  });

  it('--error-log /dev/full: the master still reloads, replaces workers and stops on TERM', async () => {
    const cwd = project();
    const a = new ArbProcess(
      ['-w', '2', '-b', '127.0.0.1:0', '--error-log', '/dev/full', 'app.mjs'],
      {
        cwd,
      },
    );
    running.push(a);
    // nothing reaches stderr but the warning: readiness comes from the ctl socket
    const status = await waitFor(
      async () => {
        const r = await ctlJson(['status'], cwd);
        const ws = (r.body.workers as { state: string }[] | undefined) ?? [];
        return ws.length === 2 && ws.every((w) => w.state === 'ready') ? r : undefined;
      },
      20_000,
      'two ready workers',
    );
    const listeners = status.body.listeners as { address: string }[];
    const port = Number(listeners[0]!.address.split(':').pop());
    const target: Target = { host: '127.0.0.1', port };
    expect((await request(target)).status).toBe(200);
    const reload = await ctlJson(['reload'], cwd);
    expect(reload.body).toMatchObject({ ok: true, outcome: 'completed' });
    await killOneAndWaitReplaced(a, cwd);
    expect((await request(target)).status).toBe(200);
    expect(a.stderr).toMatch(/cannot write the log to \/dev\/full: ENOSPC/);
    const t0 = Date.now();
    expect(await a.stop()).toBe(0);
    expect(Date.now() - t0).toBeLessThan(10_000);
  });

  it.skipIf(!root)(
    'a full disk under --error-log: supervision goes on, TERM works, logging resumes when space is freed',
    async () => {
      const cwd = project();
      const disk = path.join(cwd, 'disk');
      fs.mkdirSync(disk);
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=512k', 'tmpfs', disk]);
      mounts.push(disk);
      const logFile = path.join(disk, 'arb.log');
      const a = new ArbProcess(
        ['-w', '2', '-b', '127.0.0.1:0', '--error-log', logFile, 'app.mjs'],
        {
          cwd,
        },
      );
      running.push(a);
      await waitFor(
        () => fs.readFileSync(logFile, 'utf8').includes('Serving with 2 workers'),
        20_000,
        'serving',
      );
      // fill the disk
      const filler = path.join(disk, 'filler');
      try {
        fs.writeFileSync(filler, Buffer.alloc(1024 * 1024));
      } catch (err) {
        expect((err as NodeJS.ErrnoException).code).toBe('ENOSPC');
      }
      // and the last page of the log itself, which a short line would still fit in
      const fd = fs.openSync(logFile, 'a');
      try {
        for (;;) fs.writeSync(fd, Buffer.alloc(512, 0x20));
      } catch (err) {
        expect((err as NodeJS.ErrnoException).code).toBe('ENOSPC');
      } finally {
        fs.closeSync(fd);
      }
      expect((await ctlJson(['reload'], cwd)).body).toMatchObject({
        ok: true,
        outcome: 'completed',
      });
      await killOneAndWaitReplaced(a, cwd);
      expect(a.stderr).toMatch(/cannot write the log to .*arb\.log: ENOSPC/);
      // space again: the next lines are written
      fs.rmSync(filler);
      expect((await ctlJson(['reload'], cwd)).body).toMatchObject({ ok: true });
      await waitFor(
        () => fs.readFileSync(logFile, 'utf8').includes('Reload complete'),
        10_000,
        'log lines after the disk has space again',
      );
      expect(await a.stop()).toBe(0);
      expect(fs.readFileSync(logFile, 'utf8')).toContain('Shutting down: Master');
    },
  );
});

describe('logrotate (mv, then USR1) with workers running as nobody', () => {
  it.skipIf(!root)(
    'no worker dies, no request fails, the new files belong to the workers and fill up',
    async () => {
      const cwd = project(0o755);
      const logs = path.join(cwd, 'log');
      fs.mkdirSync(logs, { mode: 0o755 });
      const errorLog = path.join(logs, 'error.log');
      const accessLog = path.join(logs, 'access.log');
      const a = new ArbProcess(
        [
          '-w',
          '2',
          '-u',
          'nobody',
          '-g',
          'nogroup',
          '-b',
          '127.0.0.1:0',
          '--error-log',
          errorLog,
          '--access-log',
          accessLog,
          'app.mjs',
        ],
        { cwd },
      );
      running.push(a);
      const status = await waitFor(
        async () => {
          const r = await ctlJson(['status'], cwd);
          const ws = (r.body.workers as { state: string }[] | undefined) ?? [];
          return ws.length === 2 && ws.every((w) => w.state === 'ready') ? r : undefined;
        },
        20_000,
        'two ready workers',
      );
      const port = Number(
        (status.body.listeners as { address: string }[])[0]!.address.split(':').pop(),
      );
      const target: Target = { host: '127.0.0.1', port };
      const before = await workerPids(cwd);
      for (const p of before) a.pids.add(p);
      const load = new LoadLoop([target], { fresh: 2, keepAlive: 2 });
      loops.push(load);
      await load.progress(50);
      // logrotate's default: move the files away, then tell arb
      fs.renameSync(errorLog, `${errorLog}.1`);
      fs.renameSync(accessLog, `${accessLog}.1`);
      process.kill(a.pid, 'SIGUSR1');
      await waitFor(
        () => fs.existsSync(accessLog) && fs.statSync(accessLog).size > 0,
        10_000,
        'access lines in the new file',
      );
      await load.progress(100);
      await load.stop();
      expect(load.failures).toEqual([]);
      expect(await workerPids(cwd)).toEqual(before);
      for (const f of [errorLog, accessLog]) {
        const st = fs.statSync(f);
        expect([st.uid, st.gid]).toEqual([65534, 65534]);
      }
      expect(fs.readFileSync(errorLog, 'utf8')).toContain('Reopened log files');
      expect(await a.stop()).toBe(0);
    },
  );
});
