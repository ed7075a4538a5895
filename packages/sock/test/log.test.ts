import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { tempDir } from '@arb/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogSink, LineDestination, normalizeLevel } from '../src/log.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});
function scratch(): string {
  const d = tempDir('arbs-log-');
  dirs.push(d);
  return d;
}

describe('the log destination', () => {
  it('appends JSON lines with proc and pid, making the directory', () => {
    const file = path.join(scratch(), 'sub', 'arb.log');
    const sink = createLogSink({ proc: 'master', dest: file, format: 'json' });
    sink.log.info({ workers: 2 }, 'Serving with 2 workers');
    const line = JSON.parse(fs.readFileSync(file, 'utf8'));
    expect(line).toMatchObject({ proc: 'master', pid: process.pid, workers: 2, level: 30 });
    expect(line.msg).toBe('Serving with 2 workers');
    expect(sink.dropped()).toBe(0);
  });

  it('never throws when the device is full: lines are dropped and counted', () => {
    const sink = createLogSink({ proc: 'worker', dest: '/dev/full', format: 'json' });
    for (let i = 0; i < 50; i++) sink.log.info('a line that cannot be written');
    expect(sink.dropped()).toBe(50);
  });

  it('warns on stderr once a minute, not once a line', () => {
    // in a child (on the built package), so that its stderr can be read
    const script = `
      import { createLogSink } from ${JSON.stringify(path.resolve('dist/log.js'))};
      const sink = createLogSink({ proc: 'worker', dest: '/dev/full', format: 'json' });
      for (let i = 0; i < 100; i++) sink.log.info('x');
    `;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      encoding: 'utf8',
    });
    const warnings = r.stderr.split('\n').filter((l) => l.includes('cannot write the log'));
    expect(warnings).toEqual([
      `arb[${r.pid}]: cannot write the log to /dev/full: ENOSPC; 1 line(s) dropped (1 in all)`,
    ]);
    expect(r.status).toBe(0);
  });

  it('reopen after a rotation writes to the new file; a failed reopen keeps the old one', () => {
    const dir = scratch();
    const file = path.join(dir, 'arb.log');
    const d = new LineDestination(file);
    d.write('one\n');
    fs.renameSync(file, `${file}.1`);
    d.reopen();
    d.write('two\n');
    expect(fs.readFileSync(`${file}.1`, 'utf8')).toBe('one\n');
    expect(fs.readFileSync(file, 'utf8')).toBe('two\n');
    // the path becomes a directory: reopening fails, writing goes on to the open file
    fs.renameSync(file, `${file}.2`);
    fs.mkdirSync(file);
    d.reopen();
    d.write('three\n');
    expect(fs.readFileSync(`${file}.2`, 'utf8')).toBe('two\nthree\n');
    expect(d.dropped).toBe(0);
  });

  it('maps gunicorn level names', () => {
    expect(normalizeLevel('warning')).toBe('warn');
    expect(normalizeLevel('critical')).toBe('fatal');
    expect(normalizeLevel('nonsense')).toBe('info');
  });
});
