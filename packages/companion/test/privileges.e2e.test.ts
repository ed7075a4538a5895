// Companions drop root: by default to the user/group the manager is given (arb passes the
// workers' -u/-g), with that user's supplementary groups; a companion naming its own
// `user`/`group` runs as those (root only when named). Needs root to switch users.
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Manager } from '../src/index.js';
import { cleanup, nodeCmd, tmp, track, waitFor } from './helpers.js';

const root = process.getuid?.() === 0;
if (!root) console.log('skipped: switching companions to another user needs root');

/** What a companion reports about itself: ids, groups, and whether it can read `secret`. */
const probe = (secret: string) =>
  `const fs = require('fs'); let read = true; try { fs.readFileSync(${JSON.stringify(secret)}); } catch { read = false; }
   console.log(JSON.stringify({ name: process.env.ARB_COMPANION_NAME, uid: process.getuid(), gid: process.getgid(), groups: process.getgroups().sort((a, b) => a - b), read }));
   setInterval(() => {}, 1000);`;

type Report = { name: string; uid: number; gid: number; groups: number[]; read: boolean };

const managers: Manager[] = [];
afterEach(() =>
  cleanup(async () => {
    for (const m of managers.splice(0)) {
      if (m.guardPid) track(m.guardPid);
      await m.stop({ quick: true });
    }
  }),
);

describe('companion privileges', () => {
  it.skipIf(!root)(
    'run as the given user/group with its groups by default; as a named user when configured',
    async () => {
      const dir = tmp();
      // Companions running as nobody must reach their module through this directory.
      chmodSync(dir, 0o755);
      const secret = join(dir, 'secret');
      writeFileSync(secret, 'root only', { mode: 0o600 });
      writeFileSync(join(dir, 'probe.cjs'), `exports.run = () => { ${probe(secret)} };\n`);
      const out = join(dir, 'out.log');
      const m = new Manager({
        companions: {
          defaults: { startSecs: 0.1, stopTimeout: 5, stdout: out },
          workers: [
            { name: 'cmd', command: nodeCmd(probe(secret)) },
            { name: 'target', target: './probe.cjs:run' },
            { name: 'daemon', user: 'daemon', command: nodeCmd(probe(secret)) },
            { name: 'rooted', user: 'root', command: nodeCmd(probe(secret)) },
            { name: 'grouped', group: 'daemon', command: nodeCmd(probe(secret)) },
          ],
        },
        baseDir: dir,
        user: 'nobody',
        group: 'nogroup',
      });
      managers.push(m);
      await m.start();
      for (const name of m.names()) {
        const pid = m.get(name)?.pid;
        if (pid) track(pid);
      }
      const reports = await waitFor(
        () => {
          const lines = readFileSync(out, 'utf8').split('\n').filter(Boolean);
          const byName = new Map(lines.map((l) => JSON.parse(l) as Report).map((r) => [r.name, r]));
          return byName.size === 5 ? byName : null;
        },
        10_000,
        'five companion reports',
      );
      const nobody = { uid: 65534, gid: 65534, groups: [65534], read: false };
      expect(reports.get('cmd')).toMatchObject(nobody);
      expect(reports.get('target')).toMatchObject(nobody);
      // A named user without a group: that user's primary group and its groups.
      expect(reports.get('daemon')).toMatchObject({ uid: 1, gid: 1, groups: [1], read: false });
      expect(reports.get('rooted')).toMatchObject({ uid: 0, gid: 0, read: true });
      expect(reports.get('rooted')!.groups).toContain(0);
      // A named group only: the default user, in that group.
      expect(reports.get('grouped')).toMatchObject({ uid: 65534, gid: 1, read: false });
    },
  );
});
