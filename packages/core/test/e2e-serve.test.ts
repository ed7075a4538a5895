// End to end: every app kind served by real workers, HTTPS, keep-alive, backlog, the
// access log, and USR1 reopening the log files.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  cleanupMasters,
  FIXTURES,
  loggedWorkerPids,
  type Master,
  request,
  startMaster,
  tempDir,
  waitFor,
} from './helpers.js';

afterEach(cleanupMasters);

describe('app kinds', () => {
  const kinds: [string, string][] = [
    ['cjs', 'app-cjs.cjs'],
    ['ts', 'app-ts.ts'],
    ['fetch', 'app-fetch.mjs'],
    ['server', 'app-server.mjs:server'],
    ['factory', 'app-factory.mjs'],
    ['fastify', 'app-fastify.mjs'],
  ];
  for (const [kind, app] of kinds) {
    it(`serves ${kind} (${app}) over TCP and the unix socket`, async () => {
      const master = await startMaster({ app, chdir: FIXTURES, workers: 1 });
      for (const via of ['tcp', 'unix'] as const) {
        const reply = await request(master, '/x', { via });
        expect(reply.status).toBeLessThan(300);
        const body = JSON.parse(reply.body);
        expect(body.kind).toBe(kind);
        expect(loggedWorkerPids(master)).toContain(body.pid);
        if (kind === 'fastify') expect(body.ready).toBe(true);
      }
    });
  }

  it('fetch handler: request body in, status, repeated headers and a streamed body out', async () => {
    const master = await startMaster({ app: path.join(FIXTURES, 'app-fetch.mjs'), workers: 1 });
    const post = await request(master, '/echo', { method: 'POST', body: 'hello body' });
    expect(post.status).toBe(201);
    expect(JSON.parse(post.body)).toMatchObject({
      method: 'POST',
      body: 'hello body',
      path: '/echo',
    });
    expect(post.headers['set-cookie']).toEqual(['a=1', 'b=2']);
    const stream = await request(master, '/stream');
    expect(stream.body).toBe('chunk0;chunk1;chunk2;');
  });
});

describe('listening', () => {
  it('serves HTTPS with certfile/keyfile', async () => {
    const dir = tempDir();
    const certfile = path.join(dir, 'cert.pem');
    const keyfile = path.join(dir, 'key.pem');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        keyfile,
        '-out',
        certfile,
        '-days',
        '1',
        '-subj',
        '/CN=localhost',
      ],
      { stdio: 'ignore' },
    );
    const master = await startMaster(
      { app: path.join(FIXTURES, 'app-pid.mjs'), certfile, keyfile, bind: ['127.0.0.1:0'] },
      { dir },
    );
    const body = await new Promise<string>((resolve, reject) => {
      https
        .get(
          {
            host: '127.0.0.1',
            port: master.port,
            path: '/',
            rejectUnauthorized: false,
            agent: false,
          },
          (res) => {
            let b = '';
            res.on('data', (d) => {
              b += d;
            });
            res.on('end', () => resolve(b));
          },
        )
        .on('error', reject);
    });
    expect(JSON.parse(body).pid).toBe(loggedWorkerPids(master)[0]);
  });

  it('listens with the configured backlog and keeps idle connections keepAlive seconds', async () => {
    const master = await startMaster({
      app: path.join(FIXTURES, 'app-pid.mjs'),
      backlog: 77,
      keepAlive: 1,
      bind: ['127.0.0.1:0'],
    });
    const ss = execFileSync('ss', ['-ltnH', `sport = :${master.port}`], { encoding: 'utf8' });
    // for a listening socket, ss shows the backlog as Send-Q
    expect(ss.trim().split(/\s+/)[2]).toBe('77');
    const net = await import('node:net');
    const socket = net.connect(master.port!, '127.0.0.1');
    socket.resume();
    socket.on('error', () => {});
    socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    const openedAt = Date.now();
    await new Promise((r) => socket.once('close', r));
    const closedAfter = Date.now() - openedAt;
    expect(closedAfter).toBeGreaterThan(800);
    expect(closedAfter).toBeLessThan(4000);
  });
});

describe('logs', () => {
  async function withLogs(
    format?: string,
  ): Promise<{ master: Master; errorLog: string; accessLog: string }> {
    const dir = tempDir();
    const errorLog = path.join(dir, 'error.log');
    const accessLog = path.join(dir, 'access.log');
    const master = await startMaster(
      {
        app: path.join(FIXTURES, 'app-pid.mjs'),
        workers: 2,
        errorLog,
        accessLog,
        accessLogFormat: format,
      },
      { dir },
    );
    return { master, errorLog, accessLog };
  }

  it('writes JSON lines naming the process, and an access line per request', async () => {
    const { master, errorLog, accessLog } = await withLogs();
    const reply = await request(master, '/hello?x=1');
    const line = await waitFor(() =>
      fs
        .readFileSync(accessLog, 'utf8')
        .split('\n')
        .find((l) => l.includes('/hello')),
    );
    const access = JSON.parse(line);
    expect(access).toMatchObject({
      proc: 'worker',
      pid: reply.json!.pid,
      method: 'GET',
      url: '/hello?x=1',
      status: 200,
      log: 'access',
    });
    const lines = fs
      .readFileSync(errorLog, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.find((l) => l.msg.startsWith('Listening at:'))).toMatchObject({
      proc: 'master',
      pid: master.pid,
    });
  });

  it('formats access lines with accessLogFormat', async () => {
    const { master, accessLog } = await withLogs('%(h)s "%(r)s" %(s)s');
    await request(master, '/fmt');
    const line = await waitFor(() =>
      fs
        .readFileSync(accessLog, 'utf8')
        .split('\n')
        .find((l) => l.includes('/fmt')),
    );
    expect(JSON.parse(line).msg).toBe('127.0.0.1 "GET /fmt HTTP/1.1" 200');
  });

  it('USR1 reopens the log files in the master and the workers', async () => {
    const { master, errorLog, accessLog } = await withLogs();
    await request(master, '/before');
    await waitFor(() => fs.readFileSync(accessLog, 'utf8').includes('/before'));
    fs.renameSync(errorLog, `${errorLog}.1`);
    fs.renameSync(accessLog, `${accessLog}.1`);
    process.kill(master.pid, 'SIGUSR1');
    await waitFor(
      () =>
        fs.existsSync(errorLog) && fs.readFileSync(errorLog, 'utf8').includes('Reopened log files'),
      {
        what: 'the master writing to the new error log',
      },
    );
    // the workers reopen on the USR1 the master forwards: each new request lands in the new file
    await waitFor(
      async () => {
        await request(master, '/after');
        return fs.existsSync(accessLog) && fs.readFileSync(accessLog, 'utf8').includes('/after');
      },
      { what: 'a worker writing to the new access log' },
    );
    expect(fs.readFileSync(`${accessLog}.1`, 'utf8')).toContain('/before');
  });
});
