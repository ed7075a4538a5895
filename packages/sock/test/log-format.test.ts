import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { parseArbLogLine, parseStrictJson, tempDir } from '@arb/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { colorsWanted, createLogSink, localTimestamp, prettyLine } from '../src/log.js';

const dirs: string[] = [];
const tz = process.env.TZ;
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  if (tz === undefined) delete process.env.TZ;
  else process.env.TZ = tz;
});
function logFile(): string {
  const d = tempDir('arbs-fmt-');
  dirs.push(d);
  return path.join(d, 'arb.log');
}
function lines(file: string): string[] {
  return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
}

const T = Date.UTC(2026, 11, 1, 1, 40, 4, 816);

describe('JSON lines', () => {
  it('never repeat a key: a logged field named like an own one is renamed', () => {
    const file = logFile();
    const sink = createLogSink({
      proc: 'worker',
      dest: file,
      format: 'json',
      base: { log: 'access' },
    });
    sink.log.info({ pid: 1, time: new Date(T), proc: 'x', log: 'y', msg: 'z', _pid: 2 }, 'hello');
    sink.log.child({ companion: 'jobs' }).warn({ status: 200 }, 'child');
    const [first, second] = lines(file).map(parseArbLogLine);
    expect(first).toMatchObject({
      proc: 'worker',
      pid: process.pid,
      log: 'access',
      msg: 'hello',
      _pid: 2,
      __pid: 1,
      _time: new Date(T).toISOString(),
      _proc: 'x',
      _log: 'y',
      _msg: 'z',
    });
    expect(second).toMatchObject({ proc: 'worker', companion: 'jobs', status: 200, level: 40 });
  });

  it('the strict parser refuses a repeated key, as ingesters do', () => {
    expect(() => parseStrictJson('{"time":1,"a":{"b":1},"time":"x"}')).toThrow(
      /duplicate key "time"/,
    );
    expect(() => parseStrictJson('{"a":{"b":1,"b":2}}')).toThrow(/duplicate key "b"/);
    expect(parseStrictJson('{"a":[1,{"b":"\\"}"}],"c":null}')).toEqual({
      a: [1, { b: '"}' }],
      c: null,
    });
  });

  it('writes lines of another process with its proc and pid', () => {
    const file = logFile();
    const sink = createLogSink({ proc: 'manager', dest: file, format: 'json', level: 'error' });
    sink.foreign(
      { proc: 'companion', pid: 4242, companion: 'jobs', stream: 'stderr', continues: undefined },
      'boom "quoted"\u0000',
    );
    const line = parseArbLogLine(lines(file)[0]!);
    expect(line).toMatchObject({
      proc: 'companion',
      pid: 4242,
      companion: 'jobs',
      stream: 'stderr',
      level: 30,
      msg: 'boom "quoted"\u0000',
    });
    expect('continues' in line).toBe(false);
  });

  it('pino-pretty reads them', () => {
    const file = logFile();
    const sink = createLogSink({ proc: 'master', dest: file, format: 'json' });
    sink.log.info({ workerPid: 43, workerAge: 1 }, 'Booting worker with pid: 43');
    sink.log.error({ err: new Error('bad') }, 'Exception in worker process');
    sink.foreign({ proc: 'companion', pid: 44, companion: 'jobs', stream: 'stdout' }, 'tick');
    const bin = createRequire(import.meta.url).resolve('pino-pretty/bin.js');
    const r = spawnSync(process.execPath, [bin, '--no-colorize'], {
      input: fs.readFileSync(file),
      encoding: 'utf8',
    });
    expect(r.status).toBe(0);
    // pino-pretty shows `(pid)`; arb's proc, the worker's pid and the rest as fields
    expect(r.stdout).toMatch(
      new RegExp(
        `INFO \\(${process.pid}\\): Booting worker with pid: 43\\n\\s+proc: "master"\\n\\s+workerPid: 43\\n\\s+workerAge: 1\\n`,
      ),
    );
    expect(r.stdout).toMatch(
      /ERROR \(\d+\): Exception in worker process\n\s+proc: "master"\n\s+err: \{\n\s+"type": "Error",\n\s+"message": "bad"/,
    );
    expect(r.stdout).toMatch(
      /INFO \(44\): tick\n\s+proc: "companion"\n\s+companion: "jobs"\n\s+stream: "stdout"/,
    );
  });
});

describe('readable lines', () => {
  it('show the local time with its zone, the level, the process and its pid', () => {
    process.env.TZ = 'Asia/Kolkata';
    expect(localTimestamp(T)).toBe('2026-12-01 07:10:04.816+05:30');
    process.env.TZ = 'America/New_York';
    expect(localTimestamp(T)).toBe('2026-11-30 20:40:04.816-05:00');
    process.env.TZ = 'UTC';
    const json = `${JSON.stringify({ level: 40, time: T, proc: 'manager', pid: 7, companion: 'jobs', msg: 'hi', note: 'two words' })}\n`;
    expect(prettyLine(json)).toBe(
      '2026-12-01 01:40:04.816+00:00 WARN  [manager 7] hi companion=jobs note="two words"\n',
    );
    const err = { type: 'Error', message: 'bad', stack: 'Error: bad\n    at x (y.js:1:1)' };
    expect(
      prettyLine(JSON.stringify({ level: 50, time: T, proc: 'worker', pid: 8, err, msg: 'oops' })),
    ).toBe(
      '2026-12-01 01:40:04.816+00:00 ERROR [worker 8] oops\nError: bad\n    at x (y.js:1:1)\n',
    );
    expect(prettyLine('not json\n')).toBe('not json\n');
  });

  it("show a companion's output as [name pid], OUT or ERR, split and binary lines marked", () => {
    process.env.TZ = 'UTC';
    const c = { level: 30, time: T, proc: 'companion', pid: 1234, companion: 'jobs' };
    expect(prettyLine(JSON.stringify({ ...c, stream: 'stdout', msg: 'tick' }))).toBe(
      '2026-12-01 01:40:04.816+00:00 OUT   [jobs 1234] tick\n',
    );
    expect(
      prettyLine(JSON.stringify({ ...c, stream: 'stderr', continues: true, msg: 'long' })),
    ).toBe('2026-12-01 01:40:04.816+00:00 ERR   [jobs 1234] long …\n');
    expect(
      prettyLine(JSON.stringify({ ...c, stream: 'stdout', base64: '/w==', msg: '\ufffd' })),
    ).toBe('2026-12-01 01:40:04.816+00:00 OUT   [jobs 1234] \ufffd (not UTF-8)\n');
  });

  it('are coloured when asked: FORCE_COLOR wins, then NO_COLOR, then TERM=dumb, then the terminal', () => {
    expect(colorsWanted({}, true)).toBe(true);
    expect(colorsWanted({}, false)).toBe(false);
    expect(colorsWanted({ NO_COLOR: '1' }, true)).toBe(false);
    expect(colorsWanted({ NO_COLOR: '' }, true)).toBe(true);
    expect(colorsWanted({ TERM: 'dumb' }, true)).toBe(false);
    expect(colorsWanted({ FORCE_COLOR: '1', NO_COLOR: '1' }, false)).toBe(true);
    expect(colorsWanted({ FORCE_COLOR: '0' }, true)).toBe(false);
    expect(colorsWanted({ FORCE_COLOR: '' }, false)).toBe(true);
    process.env.TZ = 'UTC';
    const line = JSON.stringify({ level: 50, time: T, proc: 'master', pid: 9, msg: 'x', a: 1 });
    expect(prettyLine(line, { color: true })).toBe(
      '\x1b[2m2026-12-01 01:40:04.816+00:00\x1b[0m \x1b[31mERROR\x1b[0m \x1b[36m[master 9]\x1b[0m x\x1b[90m a=1\x1b[0m\n',
    );
  });

  it('pretty into a file: readable, without colours unless FORCE_COLOR', () => {
    const plain = logFile();
    createLogSink({ proc: 'master', dest: plain, format: 'pretty', env: {} }).log.info('hi');
    expect(fs.readFileSync(plain, 'utf8')).toMatch(
      /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d INFO {2}\[master \d+\] hi\n$/,
    );
    const forced = logFile();
    createLogSink({
      proc: 'master',
      dest: forced,
      format: 'pretty',
      env: { FORCE_COLOR: '1' },
    }).log.info('hi');
    expect(fs.readFileSync(forced, 'utf8')).toContain('\x1b[32mINFO \x1b[0m');
  });
});
