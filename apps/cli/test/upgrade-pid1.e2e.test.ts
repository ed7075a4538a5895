// As PID 1 of a PID namespace (`unshare -fp`, a container without an init) arb refuses to
// upgrade in place: the new master would be its child, and the kernel kills every process
// of a namespace whose init exits. USR2, `arb ctl upgrade` and `arb upgrade --pid` all say
// so in one line, the master keeps serving, and TERM still stops it clean.
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { PID1_UPGRADE_REFUSED } from '@arb/core';
import { afterEach, describe, expect, it } from 'vitest';
import { arb, ctlJson } from './ctl-helpers.js';
import { ArbProcess, alive, namespaceUnavailable, request, tempDir, waitFor } from './harness.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

const noNamespace = namespaceUnavailable();
if (noNamespace) console.log(`skipped: upgrade refused as PID 1: ${noNamespace}`);

/** The children of `pid` (host pids). */
function childrenOf(pid: number): number[] {
  try {
    return fs
      .readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

/** The host pids of `pid` and everything under it. */
function tree(pid: number): number[] {
  return [pid, ...childrenOf(pid).flatMap(tree)];
}

function cmdline(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
  } catch {
    return '';
  }
}

describe.skipIf(noNamespace !== undefined)('upgrade as PID 1 of a PID namespace', () => {
  it('USR2, arb ctl upgrade and arb upgrade --pid are refused; it keeps serving; TERM stops it', async () => {
    const dir = tempDir();
    dirs.push(dir);
    fs.writeFileSync(
      path.join(dir, 'app.mjs'),
      'export default (req, res) => res.end(JSON.stringify({ pid: process.pid }));\n',
    );
    const a = new ArbProcess(['-b', '127.0.0.1:0', '-w', '2', '-p', 'arb.pid', 'app.mjs'], {
      cwd: dir,
      // --kill-child: should unshare be killed, the whole namespace goes with it
      wrap: ['unshare', '-fp', '--mount-proc', '--kill-child'],
    });
    const seen = new Set<number>();
    try {
      const target = await a.tcpTarget();
      const master = await waitFor(() => childrenOf(a.pid)[0], 5000, 'the master under unshare');
      expect(fs.readFileSync(path.join(dir, 'arb.pid'), 'utf8').trim()).toBe('1');
      const workers = () => childrenOf(master).filter((p) => cmdline(p).startsWith('arb: worker'));
      for (const p of tree(master)) seen.add(p);
      const before = workers().sort();
      expect(before).toHaveLength(2);
      const refusals = () => a.logs.filter((e) => e.msg === PID1_UPGRADE_REFUSED);

      // USR2: one line, no new master
      process.kill(master, 'SIGUSR2');
      await a.log((e) => e.msg === PID1_UPGRADE_REFUSED, 'the USR2 refusal');
      await sleep(500); // a new master, had one been started, would be there by now
      expect(childrenOf(master).sort()).toEqual(before);
      expect(refusals()).toHaveLength(1);
      expect(refusals()[0]!.level).toBe(40); // warn

      // arb ctl upgrade: the same reason as the ctl error, exit 1
      const ctl = await ctlJson(['upgrade'], dir);
      expect(ctl.code).toBe(1);
      expect(ctl.body).toMatchObject({ ok: false, error: PID1_UPGRADE_REFUSED });
      expect(refusals()).toHaveLength(2);

      // arb upgrade --pid: the pidfile names pid 1, refused without a signal sent
      const up = await arb(['upgrade', '--pid', 'arb.pid'], dir);
      expect(up.code).toBe(1);
      expect(up.stderr).toBe(`arb upgrade: ${PID1_UPGRADE_REFUSED}\n`);
      expect(a.logs.filter((e) => e.msg === 'Handling signal: usr2')).toHaveLength(1);

      // still serving, by the same workers
      expect(childrenOf(master).sort()).toEqual(before);
      for (let i = 0; i < 4; i++) expect((await request(target)).status).toBe(200);
      expect(a.logs.some((e) => String(e.msg).startsWith('Started a new master'))).toBe(false);

      // TERM: a clean stop, nothing of the namespace left
      for (const p of tree(master)) seen.add(p);
      process.kill(master, 'SIGTERM');
      expect(await a.exited()).toBe(0);
      await waitFor(() => [...seen].every((p) => !alive(p)), 5000, 'every process gone');
      expect(fs.existsSync(path.join(dir, 'arb.pid'))).toBe(false);
    } finally {
      if (a.child.exitCode === null && a.child.signalCode === null) a.child.kill('SIGKILL');
      await a.exited();
      await waitFor(() => [...seen].every((p) => !alive(p)), 5000, 'every process gone');
    }
  });
});
