import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { bind, claimSocketFile, close } from '../src/index.js';
import { fixture, tempDir } from './helpers.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});
function dir() {
  const d = tempDir();
  dirs.push(d);
  return d;
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

// gunicorn tests/test_sock.py equivalents, with real sockets.
describe('close', () => {
  it('closes every TCP listener and frees its port', async () => {
    const ls = await bind(['127.0.0.1:0', '127.0.0.1:0']);
    close(ls, { unlink: true });
    for (const l of ls) expect(await canListen(l.port!)).toBe(true);
  });

  it('closes a unix listener and unlinks its file once', async () => {
    const p = `${dir()}/u.sock`;
    const ls = await bind([`unix:${p}`]);
    close(ls, { unlink: true });
    expect(fs.existsSync(p)).toBe(false);
    close(ls, { unlink: true }); // a second close is a no-op
    expect(fs.existsSync(p)).toBe(false);
  });

  it('claimSocketFile takes over only inherited unix listeners', async () => {
    const p = `${dir()}/own.sock`;
    const ls = await bind([`unix:${p}`, '127.0.0.1:0']);
    expect(claimSocketFile(ls[0]!)).toBe(false); // bound here: already ours
    expect(claimSocketFile(ls[1]!)).toBe(false); // TCP: no file
    close(ls, { unlink: true });
    // the inherited case (a re-exec'd master) is covered end to end by
    // apps/cli/test/upgrade.e2e.test.ts: the promoted master removes the file on stop
  });

  it('with unlink: false closes the unix listener but keeps the file', async () => {
    const p = `${dir()}/keep.sock`;
    const ls = await bind([`unix:${p}`]);
    const ino = fs.statSync(p).ino;
    close(ls, { unlink: false });
    expect(fs.statSync(p).ino).toBe(ino);
    // Closed: nothing accepts there any more.
    const code = await new Promise((r) => {
      const c = net.connect(p);
      c.once('error', (e: NodeJS.ErrnoException) => r(e.code));
      c.once('connect', () => r('connected'));
    });
    expect(code).toBe('ECONNREFUSED');
  });

  it('never unlinks a file another process has put at the path since', async () => {
    const d = dir();
    const p = `${d}/moved.sock`;
    const ls = await bind([`unix:${p}`]);
    fs.renameSync(p, `${d}/ours.sock`);
    fs.writeFileSync(p, 'someone else');
    close(ls, { unlink: true });
    expect(fs.readFileSync(p, 'utf8')).toBe('someone else');
  });

  it.each([
    ['exits without closing', 'exit', true],
    ['closes with unlink: false and exits', 'close-keep', true],
    ['closes with unlink: true and exits', 'close-unlink', false],
  ])('a process that %s leaves the socket file %#', (_what, mode, kept) => {
    const p = `${dir()}/exit.sock`;
    const out = execFileSync(process.execPath, [fixture('bind-exit.mjs'), p, mode], {
      encoding: 'utf8',
    });
    expect(JSON.parse(out)).toEqual({ done: mode });
    expect(fs.existsSync(p)).toBe(kept);
  });
});
