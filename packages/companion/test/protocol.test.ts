import { describe, expect, it } from 'vitest';
import {
  type CompanionInfo,
  decodeRequest,
  describeCompanion,
  encodeResponse,
  formatUptime,
  statusEntry,
} from '../src/index.js';

const err = (line: string | Buffer) => {
  const d = decodeRequest(line);
  if (d.ok) throw new Error('expected an error');
  return d.response;
};

describe('decodeRequest', () => {
  it('accepts compact and spaced JSON, extra keys, trailing CR', () => {
    expect(decodeRequest('{"cmd":"status"}')).toEqual({ ok: true, request: { cmd: 'status' } });
    expect(decodeRequest('{"cmd": "stop", "name": "rq", "x": 1}\r')).toEqual({
      ok: true,
      request: { cmd: 'stop', name: 'rq' },
    });
  });
  it('reference error envelopes', () => {
    expect(err('garbage')).toEqual({ ok: false, error: 'invalid JSON' });
    expect(err(Buffer.from([0x7b, 0xff, 0x7d]))).toEqual({ ok: false, error: 'invalid JSON' });
    expect(err('[1,2]')).toEqual({ ok: false, error: 'request must be a JSON object' });
    expect(err('"x"')).toEqual({ ok: false, error: 'request must be a JSON object' });
    expect(err('null')).toEqual({ ok: false, error: 'request must be a JSON object' });
    expect(err('{}')).toEqual({ ok: false, error: "missing 'cmd'" });
    expect(err('{"cmd":5}')).toEqual({ ok: false, error: "missing 'cmd'" });
    expect(err('{"cmd":"start"}')).toEqual({ ok: false, error: "'start' requires a 'name'" });
    expect(err('{"cmd":"bogus","name":"rq"}')).toEqual({
      ok: false,
      error: "unknown command 'bogus'",
    });
  });
  it('a nameless unknown command is reported as unknown (reference defect fixed)', () => {
    expect(err('{"cmd":"bogus"}')).toEqual({ ok: false, error: "unknown command 'bogus'" });
    expect(err('{"cmd":"STATUS"}').error).toBe("unknown command 'STATUS'");
  });
  it('signal needs a known signal, normalised', () => {
    expect(decodeRequest('{"cmd":"signal","name":"rq","signal":"usr1"}')).toEqual({
      ok: true,
      request: { cmd: 'signal', name: 'rq', signal: 'SIGUSR1' },
    });
    expect(err('{"cmd":"signal","name":"rq"}').error).toContain("requires a 'signal'");
    expect(err('{"cmd":"signal","name":"rq","signal":"SIGNOPE"}').error).toBe(
      "unknown signal 'SIGNOPE'",
    );
  });
});

describe('encodeResponse', () => {
  it('is one JSON line', () => {
    const line = encodeResponse({ ok: true, message: 'a\nb' });
    expect(line.endsWith('\n')).toBe(true);
    expect(line.slice(0, -1)).not.toContain('\n');
    expect(JSON.parse(line)).toEqual({ ok: true, message: 'a\nb' });
  });
});

describe('formatUptime', () => {
  it('matches supervisor', () => {
    expect(formatUptime(59)).toBe('0:00:59');
    expect(formatUptime(3661)).toBe('1:01:01');
    expect(formatUptime(86400 + 3661)).toBe('1 day, 01:01:01');
    expect(formatUptime(2 * 86400 + 5)).toBe('2 days, 00:00:05');
    expect(formatUptime(-3)).toBe('0:00:00');
  });
});

const info = (over: Partial<CompanionInfo>): CompanionInfo => ({
  name: 'rq',
  program: 'rq',
  processNum: null,
  kind: 'command',
  state: 'STOPPED',
  pid: null,
  manualStop: false,
  uptime: null,
  startedAt: null,
  exitedAt: null,
  restarts: 0,
  exits: 0,
  kills: 0,
  memoryRestarts: 0,
  failedStarts: 0,
  lastExitCode: null,
  lastExitSignal: null,
  nextRetryAt: null,
  retryIn: null,
  restartDelay: null,
  lastError: null,
  ...over,
});

describe('status entries', () => {
  it('descriptions', () => {
    expect(describeCompanion(info({ state: 'RUNNING', pid: 8, uptime: 3.7 }))).toBe(
      'running, pid 8, uptime 0:00:03',
    );
    expect(describeCompanion(info({ state: 'STARTING' }))).toBe('starting');
    expect(describeCompanion(info({ state: 'STOPPING' }))).toBe('stopping');
    expect(
      describeCompanion(info({ state: 'BACKOFF', exits: 1, lastExitCode: 1, retryIn: 4.9 })),
    ).toBe('backoff, exited with status 1, retrying in 4s');
    expect(
      describeCompanion(
        info({ state: 'BACKOFF', exits: 1, lastExitSignal: 'SIGKILL', retryIn: 1 }),
      ),
    ).toBe('backoff, exited with signal SIGKILL, retrying in 1s');
    expect(describeCompanion(info({ manualStop: true, exits: 1, lastExitCode: 0 }))).toBe(
      'stopped, stopped manually',
    );
    expect(describeCompanion(info({ exits: 1, lastExitCode: 0 }))).toBe(
      'stopped, exited with status 0',
    );
    expect(describeCompanion(info({}))).toBe('stopped, not started');
    expect(
      describeCompanion(info({ state: 'FATAL', exits: 3, lastExitCode: 2, failedStarts: 3 })),
    ).toBe('fatal, exited with status 2, gave up after 3 failed starts');
  });
  it('keeps the reference keys (BACKOFF-only fields) and adds richer ones', () => {
    const running = statusEntry(
      info({ state: 'RUNNING', pid: 8, uptime: 1.23456, exits: 1, lastExitCode: 3, restarts: 2 }),
    );
    expect(running).toMatchObject({
      name: 'rq',
      state: 'RUNNING',
      pid: 8,
      next_retry_at: null,
      restart_delay: null,
      last_exit_code: null,
      uptime: 1.235,
      restarts: 2,
      exit_code: 3,
    });
    const backoff = statusEntry(
      info({
        state: 'BACKOFF',
        exits: 1,
        lastExitCode: 3,
        nextRetryAt: 1000.5,
        restartDelay: 2,
        retryIn: 1.5,
      }),
    );
    expect(backoff).toMatchObject({
      next_retry_at: 1000.5,
      restart_delay: 2,
      last_exit_code: 3,
      retry_in: 1.5,
    });
    const sig = statusEntry(info({ state: 'BACKOFF', exits: 1, lastExitSignal: 'SIGKILL' }));
    expect(sig).toMatchObject({ last_exit_code: null, exit_signal: 'SIGKILL' });
  });
});
