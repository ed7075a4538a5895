// The error and access logs on a disk that fills up under load (a 1 MB tmpfs, as root; else
// /dev/full): while it is full, HUPs reload, a killed worker is replaced, requests are served;
// once space is freed, writing resumes; TERM stops arb at once.
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { ArbProcess } from '../arb.js';
import { wrkStoppable } from '../load.js';
import {
  alive,
  freePort,
  killQuiet,
  now,
  rmDir,
  rssMB,
  sleep,
  tempDir,
  waitServed,
} from '../util.js';
import { type ChaosResult, ctlRequest, HANDLER } from './common.js';

export async function logDiskFull(o: { seconds: number }): Promise<ChaosResult> {
  const dir = tempDir('logfull');
  const root = process.getuid?.() === 0;
  const disk = join(dir, 'disk');
  let mounted = false;
  if (root) {
    mkdirSync(disk);
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', disk]);
      mounted = true;
    } catch {
      // no mount here: /dev/full below
    }
  }
  const errorLog = mounted ? join(disk, 'error.log') : '/dev/full';
  const accessLog = mounted ? join(disk, 'access.log') : '/dev/full';
  const port = await freePort();
  const ctl = join(dir, 'arb.ctl');
  // its log goes to the disk, not to stderr: readiness and the workers come from probes and ctl
  const a = new ArbProcess(
    [
      '-w',
      '2',
      '-b',
      `127.0.0.1:${port}`,
      '--worker-tmp-dir',
      dir,
      '--error-log',
      errorLog,
      '--access-log',
      accessLog,
      '--ctl-socket',
      ctl,
      HANDLER,
    ],
    {},
    dir,
  );
  if (!(await waitServed(port, 30000))) {
    await a.stop();
    if (mounted) execFileSync('umount', ['-l', disk]);
    rmDir(dir);
    throw new Error('arb did not start serving');
  }
  const workerPids = async () =>
    (((await ctlRequest(ctl, { cmd: 'status' }))?.workers as { pid: number }[] | undefined) ?? [])
      .map((w) => w.pid)
      .filter(Boolean);
  const w = wrkStoppable({ port, kind: 'close', seconds: 600, connections: 16 });
  // the access log fills the tmpfs within a second or two under load; make sure it is full
  if (mounted) fillUp(join(disk, 'filler'));
  let hups = 0;
  let kills = 0;
  let rssPeak = 0;
  const end = now() + o.seconds * 1000;
  while (now() < end) {
    a.signal('SIGHUP');
    hups++;
    await sleep(1000);
    const pids = await workerPids();
    if (pids.length && killQuiet(pids[0]!, 'SIGKILL')) kills++;
    await sleep(1000);
    rssPeak = Math.max(rssPeak, rssMB(a.pid));
  }
  w.stop();
  const r = await w.result;
  const masterAlive = alive(a.pid) && !a.exit;
  let resumed = !mounted;
  if (mounted) {
    rmSync(join(disk, 'filler'), { force: true });
    rmSync(accessLog, { force: true });
    const before = readFileSync(errorLog, 'utf8').length;
    a.signal('SIGUSR1'); // reopen: the access log is a new file now
    a.signal('SIGHUP');
    const t0 = now();
    while (!resumed && now() - t0 < 10000) {
      await sleep(200);
      resumed = readFileSync(errorLog, 'utf8').length > before;
    }
  }
  const t0 = now();
  const leaked = await a.stop();
  const stopMs = now() - t0;
  if (mounted) execFileSync('umount', ['-l', disk]);
  rmDir(dir);
  const inFlight = r.errors.read + r.errors.write;
  const notInFlight = r.errors.timeout + r.errors.connect + r.errors.status;
  const bound = kills * 8; // 16 connections over 2 workers in flight per kill
  const pass =
    masterAlive &&
    resumed &&
    inFlight <= bound &&
    notInFlight === 0 &&
    stopMs < 5000 &&
    leaked.length === 0;
  return {
    name: `logs on a ${mounted ? 'full 1 MB tmpfs' : '/dev/full (no tmpfs: not root)'} for ${o.seconds} s under wrk -c16: a HUP and a kill -9 of a worker every 2 s`,
    tried: `${hups} HUPs, ${kills} kill -9, ${r.requests} requests (p99 ${r.p99.toFixed(0)} ms)`,
    lost:
      `${r.failed} failed requests (${inFlight} reset in flight on killed workers, bound ${bound}; ${notInFlight} never served); ` +
      `master ${masterAlive ? 'alive' : 'DEAD'}, RSS peak ${rssPeak.toFixed(1)} MB; logging ${mounted ? (resumed ? 'resumed once space was freed' : 'did NOT resume') : 'n/a'}; ` +
      `TERM -> exit in ${stopMs.toFixed(0)} ms; leaked after stop: ${leaked.length ? leaked.join(' ') : 'none'}`,
    pass,
    details: { hups, kills, result: r, rssPeak, resumed, stopMs, mounted },
  };
}

function fillUp(file: string): void {
  const fd = openSync(file, 'a');
  try {
    for (;;) writeSync(fd, Buffer.alloc(64 * 1024));
  } catch {
    // ENOSPC: full
  } finally {
    closeSync(fd);
  }
}
