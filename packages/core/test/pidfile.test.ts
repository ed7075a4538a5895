// gunicorn's tests/test_pidfile.py (reference §6.5) and the pidfile lifecycle.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { PidfileError } from '../src/errors.js';
import { Pidfile } from '../src/master/pidfile.js';
import { tempDir } from './helpers.js';

let dir: string;
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function file(content?: string): string {
  dir = tempDir();
  const p = path.join(dir, 'app.pid');
  if (content !== undefined) fs.writeFileSync(p, content);
  return p;
}

const errno = (code: string) => Object.assign(new Error(code), { code });

describe('validate', () => {
  it('no file: none', () => {
    expect(new Pidfile(file()).validate()).toBeUndefined();
  });

  it('a live pid: that pid (signal 0 was sent)', () => {
    const kill = vi.fn();
    expect(new Pidfile(file('1'), kill).validate()).toBe(1);
    expect(kill).toHaveBeenCalledWith(1, 0);
  });

  it('malformed content: none', () => {
    expect(new Pidfile(file('a'), vi.fn()).validate()).toBeUndefined();
  });

  it('EPERM (alive, not ours): still that pid', () => {
    const kill = vi.fn(() => {
      throw errno('EPERM');
    });
    expect(new Pidfile(file('1'), kill).validate()).toBe(1);
  });

  it('ESRCH (stale): none', () => {
    const kill = vi.fn(() => {
      throw errno('ESRCH');
    });
    expect(new Pidfile(file('1'), kill).validate()).toBeUndefined();
  });
});

describe('create and unlink', () => {
  it('writes "<pid>\\n" with mode 0644 and no temp file left', () => {
    const p = file();
    new Pidfile(p).create(process.pid);
    expect(fs.readFileSync(p, 'utf8')).toBe(`${process.pid}\n`);
    expect(fs.statSync(p).mode & 0o777).toBe(0o644);
    expect(fs.readdirSync(dir)).toEqual(['app.pid']);
  });

  it('is refused while another live process owns the file', () => {
    const p = file(`${process.ppid}\n`);
    const err = (() => {
      try {
        new Pidfile(p).create(process.pid);
      } catch (e) {
        return e as PidfileError;
      }
    })();
    expect(err).toBeInstanceOf(PidfileError);
    expect(err?.pid).toBe(process.ppid);
    expect(err?.message).toBe(
      `Already running on PID ${process.ppid} (or pid file '${p}' is stale)`,
    );
    expect(fs.readFileSync(p, 'utf8')).toBe(`${process.ppid}\n`);
  });

  it('replaces a stale file', () => {
    const p = file('999999999\n');
    new Pidfile(p).create(process.pid);
    expect(fs.readFileSync(p, 'utf8')).toBe(`${process.pid}\n`);
  });

  it('fails clearly when the directory is missing', () => {
    const p = path.join(file(), 'missing', 'x.pid');
    expect(() => new Pidfile(p).create(process.pid)).toThrow(
      /Can't create pidfile .*: directory .* doesn't exist/,
    );
  });

  it('unlink removes the file only while it holds our pid', () => {
    const p = file();
    const pf = new Pidfile(p);
    pf.create(process.pid);
    fs.writeFileSync(p, '12345\n');
    pf.unlink();
    expect(fs.existsSync(p)).toBe(true);
    fs.writeFileSync(p, `${process.pid}\n`);
    pf.unlink();
    expect(fs.existsSync(p)).toBe(false);
    pf.unlink(); // already gone: no error
  });

  it('rename moves it', () => {
    const p = file();
    const pf = new Pidfile(`${p}.2`);
    pf.create(process.pid);
    pf.rename(p);
    expect(fs.existsSync(`${p}.2`)).toBe(false);
    expect(fs.readFileSync(p, 'utf8')).toBe(`${process.pid}\n`);
  });
});
