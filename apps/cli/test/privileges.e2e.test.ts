// Issue 13 item 7: `-u nobody` without `-g` gives the workers nobody's primary group and
// supplementary groups, never the master's group 0.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ArbProcess, cleanup, tempDir } from './harness.js';

const running: ArbProcess[] = [];
const dirs: string[] = [];
afterEach(() => cleanup(running, dirs));

/** `nobody`'s uid and primary gid from /etc/passwd, and its groups from /etc/group. */
function nobody(): { uid: number; gid: number; groups: number[] } | undefined {
  const line = fs
    .readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('nobody:'));
  if (!line) return undefined;
  const [, , uid, gid] = line.split(':');
  const groups = new Set([Number(gid)]);
  for (const g of fs.readFileSync('/etc/group', 'utf8').split('\n')) {
    const [, , id, members] = g.split(':');
    if (members?.split(',').includes('nobody')) groups.add(Number(id));
  }
  return { uid: Number(uid), gid: Number(gid), groups: [...groups].sort((a, b) => a - b) };
}

describe('-u without -g', () => {
  it('the worker runs with the user primary group and its own groups, not root group 0', async (ctx) => {
    const who = nobody();
    if (process.getuid?.() !== 0 || !who) {
      process.stderr.write('skipped: needs root and a user named nobody\n');
      ctx.skip();
      return;
    }
    const cwd = tempDir();
    dirs.push(cwd);
    fs.chmodSync(cwd, 0o755); // the worker (nobody) reads the app from here
    // a root-only group file the worker must not read through group 0
    fs.writeFileSync(path.join(cwd, 'secret.txt'), 'root group only\n', { mode: 0o640 });
    fs.writeFileSync(
      path.join(cwd, 'app.mjs'),
      `import fs from 'node:fs';
export default (req, res) => {
  let secret = 'denied';
  try { secret = fs.readFileSync(${JSON.stringify(path.join(cwd, 'secret.txt'))}, 'utf8'); } catch {}
  res.end(JSON.stringify({ uid: process.getuid(), gid: process.getgid(), groups: process.getgroups(), secret }));
};
`,
      { mode: 0o644 },
    );
    const a = new ArbProcess(
      ['-u', 'nobody', '-b', '127.0.0.1:0', '--ctl-socket', 'none', 'app.mjs'],
      {
        cwd,
      },
    );
    running.push(a);
    const target = await a.tcpTarget();
    const body = await new Promise<string>((resolve, reject) =>
      http
        .get({ ...target, path: '/', agent: false }, (r) => {
          let b = '';
          r.on('data', (c) => {
            b += c;
          }).on('end', () => resolve(b));
        })
        .on('error', reject),
    );
    const seen = JSON.parse(body) as { uid: number; gid: number; groups: number[]; secret: string };
    expect(seen.uid).toBe(who.uid);
    expect(seen.gid).toBe(who.gid);
    expect([...seen.groups].sort((x, y) => x - y)).toEqual(who.groups);
    expect(seen.secret).toBe('denied');
  });
});

describe('an app file the workers user cannot read', () => {
  it('is reported as permission denied, naming the file and the uid: exit 4', async (ctx) => {
    if (process.getuid?.() !== 0 || !nobody()) {
      process.stderr.write('skipped: needs root and a user named nobody\n');
      ctx.skip();
      return;
    }
    const cwd = tempDir();
    dirs.push(cwd);
    fs.chmodSync(cwd, 0o755);
    const app = path.join(cwd, 'app.mjs');
    fs.writeFileSync(app, 'export default (q, s) => s.end("x");\n', { mode: 0o600 });
    const a = new ArbProcess(
      ['-u', 'nobody', '-b', '127.0.0.1:0', '--ctl-socket', 'none', 'app.mjs'],
      {
        cwd,
      },
    );
    running.push(a);
    expect(await a.exited()).toBe(4);
    expect(a.stderr).toContain(
      `cannot load app 'app.mjs': permission denied reading ${app} (as uid ${nobody()!.uid})`,
    );
    expect(a.stderr).not.toContain('no file');
  });
});
