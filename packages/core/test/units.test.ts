// Config, worker states, exit classification, backoff, heartbeat files, access log format.
import fs from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { describe, expect, it } from 'vitest';
import { monotonic } from '../src/clock.js';
import { settingsOf } from '../src/config.js';
import { SettingError } from '../src/errors.js';
import { HOOK_PROCESS, pickHooks } from '../src/hooks.js';
import { Backoff } from '../src/master/backoff.js';
import { classifyExit } from '../src/master/reap.js';
import { isCounted, nextState } from '../src/master/worker-state.js';
import { createHeartbeat, heartbeatInterval, stamp } from '../src/protocol/heartbeat.js';
import { defaultProcName, resolveSettings, splitAppSpec } from '../src/settings.js';
import { masterTitle, workerTitle } from '../src/titles.js';
import { accessFields, formatAccess } from '../src/worker/access-log.js';
import { tempDir } from './helpers.js';

describe('config', () => {
  it('fills the defaults', () => {
    const s = resolveSettings({ app: './src/server.ts:app' });
    expect(s).toMatchObject({
      bind: ['127.0.0.1:8000'],
      workers: 1,
      timeout: 30,
      gracefulTimeout: 30,
      keepAlive: 5,
      backlog: 2048,
      maxRequests: 0,
      procName: 'server',
      logLevel: 'info',
      errorLog: '-',
    });
  });

  it('names the bad setting and its value', () => {
    const err = (() => {
      try {
        resolveSettings({ app: 'a.js', workers: -1 });
      } catch (e) {
        return e as SettingError;
      }
    })();
    expect(err).toBeInstanceOf(SettingError);
    expect(err?.key).toBe('workers');
    expect(err?.value).toBe(-1);
    expect(() => resolveSettings({ app: 'a.js', timeout: Number.NaN })).toThrow(/timeout/);
    expect(() => resolveSettings({ app: 'a.js', env: { 'A=B': 'x' } })).toThrow(/env/);
    expect(() => resolveSettings({ app: 'a.js', certfile: 'c.pem' })).toThrow(/keyfile/);
    expect(() => resolveSettings({ app: '' })).toThrow(/app/);
  });

  it('settingsOf drops the hooks and the non-plain keys', () => {
    const s = settingsOf({ app: 'a.js', onStarting: () => {}, configModule: 'x', workers: 2 });
    expect(s.workers).toBe(2);
    expect('onStarting' in s).toBe(false);
    expect('configModule' in s).toBe(false);
    expect(JSON.parse(JSON.stringify(s))).toEqual(s);
  });

  it('splits module:export', () => {
    expect(splitAppSpec('./app.js:server')).toEqual({ module: './app.js', exportName: 'server' });
    expect(splitAppSpec('./app.js')).toEqual({ module: './app.js', exportName: undefined });
    expect(defaultProcName('/srv/api/index.mjs:app')).toBe('index');
  });

  it('process titles', () => {
    expect(masterTitle('api')).toBe('arb: master [api]');
    expect(workerTitle('api')).toBe('arb: worker [api]');
  });
});

describe('hooks', () => {
  it('says which process runs each hook', () => {
    expect(HOOK_PROCESS.preFork).toBe('master');
    expect(HOOK_PROCESS.postFork).toBe('worker');
    expect(HOOK_PROCESS.workerExit).toBe('both');
    expect(Object.keys(HOOK_PROCESS)).toHaveLength(13);
  });

  it('picks hook functions and rejects a non-function', () => {
    const f = () => {};
    expect(pickHooks({ postFork: f, workers: 2 })).toEqual({ postFork: f });
    expect(() => pickHooks({ onExit: 'nope' })).toThrow(/onExit/);
  });
});

describe('worker states', () => {
  it('follows the table', () => {
    expect(nextState('booting', 'ready')).toBe('ready');
    expect(nextState('ready', 'retire')).toBe('retiring');
    expect(nextState('retiring', 'ready')).toBe('retiring');
    expect(nextState('ready', 'abort')).toBe('aborting');
    expect(nextState('aborting', 'kill')).toBe('killed');
    expect(nextState('killed', 'retire')).toBe('killed');
    expect(nextState('killed', 'exit')).toBe('exited');
    expect(nextState('exited', 'ready')).toBe('exited');
    expect(['booting', 'ready'].every((s) => isCounted(s as 'booting'))).toBe(true);
    expect(isCounted('retiring')).toBe(false);
  });
});

describe('exit classification', () => {
  it('3 and 4 halt with their code, naming the worker and the reason', () => {
    expect(classifyExit(7, { code: 3, signal: null }, { fatal: 'listen EACCES' }).halt).toEqual({
      status: 3,
      reason: 'Worker (pid:7) failed to boot: listen EACCES',
    });
    expect(classifyExit(7, { code: 4, signal: null }).halt?.status).toBe(4);
    expect(classifyExit(7, { code: 0, signal: null }).halt).toBeUndefined();
    expect(classifyExit(7, { code: 1, signal: null }).level).toBe('error');
  });
});

describe('backoff', () => {
  it('doubles up to the cap and resets', () => {
    const b = new Backoff(0.1, 1);
    expect([b.fail(0), b.fail(0), b.fail(0), b.fail(0), b.fail(0)]).toEqual([
      0.1, 0.2, 0.4, 0.8, 1,
    ]);
    expect(b.remaining(0.5)).toBeCloseTo(0.5);
    b.reset();
    expect(b.remaining(0)).toBe(0);
  });
});

describe('heartbeat file', () => {
  it('is unlinked, stamped now at creation, and follows the stamps on the monotonic clock', async () => {
    const dir = tempDir();
    const hb = createHeartbeat({ dir, umask: 0 });
    expect(fs.readdirSync(dir)).toEqual([]);
    const first = hb.lastUpdate()!;
    expect(Math.abs(first - monotonic())).toBeLessThan(1);
    await new Promise((r) => setTimeout(r, 30));
    stamp(hb.fd);
    expect(hb.lastUpdate()!).toBeGreaterThan(first);
    hb.close();
    expect(hb.lastUpdate()).toBeUndefined();
    fs.rmSync(dir, { recursive: true });
  });

  it('a missing directory is a clear error', () => {
    expect(() => createHeartbeat({ dir: '/nonexistent/arb', umask: 0 })).toThrow(
      /Can't create workertmp/,
    );
  });

  it('stamps a quarter of the timeout, at most every second', () => {
    expect(heartbeatInterval(2)).toBe(500);
    expect(heartbeatInterval(30)).toBe(1000);
  });
});

describe('access log format', () => {
  it('formats gunicorn atoms and headers', () => {
    const req = {
      method: 'GET',
      url: '/a?b=1',
      httpVersion: '1.1',
      headers: { 'user-agent': 'curl/8', referer: 'http://r/', 'x-id': 'abc' },
      socket: { remoteAddress: '127.0.0.1' },
    } as unknown as IncomingMessage;
    const res = {
      statusCode: 201,
      getHeader: (n: string) => ({ 'content-length': '5', 'x-out': 'o' })[n],
    } as unknown as ServerResponse;
    const f = accessFields(req, res, 1_500_000, new Date(Date.UTC(2026, 10, 27, 1, 2, 3)));
    expect(
      formatAccess(
        '%(h)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(U)s %(q)s %(M)s %({x-id}i)s %({x-out}o)s',
        req,
        res,
        f,
      ),
    ).toBe(
      '127.0.0.1 [27/Nov/2026:01:02:03 +0000] "GET /a?b=1 HTTP/1.1" 201 5 "http://r/" "curl/8" /a b=1 1 abc o',
    );
  });
});
