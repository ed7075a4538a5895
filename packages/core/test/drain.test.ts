// The worker's drain, in-process: what http's own close() would lose is served.
import http from 'node:http';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ConnectionTracker, DRAIN_IDLE_GRACE_MS } from '../src/worker/drain.js';
import { waitFor } from './helpers.js';

let server: http.Server;
afterEach(() => {
  server?.closeAllConnections();
  server?.close();
});

async function start(
  handler: http.RequestListener,
): Promise<{ tracker: ConnectionTracker; port: number; accepted: () => number }> {
  server = http.createServer(handler);
  const tracker = new ConnectionTracker();
  tracker.attach(server);
  let n = 0;
  server.on('connection', () => {
    n += 1;
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { tracker, port: (server.address() as net.AddressInfo).port, accepted: () => n };
}

function rawClient(port: number) {
  const socket = net.connect(port, '127.0.0.1');
  let data = '';
  socket.on('data', (d) => {
    data += d;
  });
  socket.on('error', () => {});
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  return { socket, data: () => data, closed };
}

describe('ConnectionTracker.drain', () => {
  it('serves the first request of a connection accepted just before the drain, with Connection: close', async () => {
    const { tracker, port, accepted } = await start((_req, res) => res.end('ok'));
    const c = rawClient(port);
    await waitFor(() => accepted() === 1);
    const drained = tracker.drain([server], 5000);
    c.socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(await drained).toBe(true);
    await c.closed;
    expect(c.data()).toMatch(/^HTTP\/1.1 200/);
    expect(c.data()).toMatch(/connection: close/i);
    expect(server.listening).toBe(false);
  });

  it('lets an in-flight request finish; a silent idle keep-alive connection closes after the grace', async () => {
    const { tracker, port } = await start((req, res) => {
      if (req.url === '/slow') setTimeout(() => res.end('slow done'), 300);
      else res.end('fast');
    });
    const idle = rawClient(port);
    idle.socket.write('GET /fast HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitFor(() => idle.data().includes('fast'));
    const busy = rawClient(port);
    busy.socket.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitFor(() => tracker.inFlight === 1);
    const started = Date.now();
    const drained = tracker.drain([server], 5000);
    await idle.closed;
    expect(Date.now() - started).toBeGreaterThanOrEqual(DRAIN_IDLE_GRACE_MS - 50);
    expect(Date.now() - started).toBeLessThan(DRAIN_IDLE_GRACE_MS + 2000);
    expect(await drained).toBe(true);
    expect(busy.data()).toContain('slow done');
    expect(busy.data()).toMatch(/connection: close/i);
  });

  it('serves a request sent on an idle keep-alive connection during the drain, then closes it', async () => {
    // The race a reload must not lose: the client reuses its kept-alive connection just as
    // the worker starts draining.
    const { tracker, port } = await start((req, res) => res.end(`answer ${req.url}`));
    const c = rawClient(port);
    c.socket.write('GET /first HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitFor(() => c.data().includes('answer /first'));
    expect(c.data()).toMatch(/keep-alive/i);
    const drained = tracker.drain([server], 5000);
    c.socket.write('GET /second HTTP/1.1\r\nHost: x\r\n\r\n');
    await c.closed;
    expect(await drained).toBe(true);
    const second = c.data().slice(c.data().indexOf('answer /first') + 1);
    expect(second).toMatch(/HTTP\/1.1 200[\s\S]*connection: close[\s\S]*answer \/second/i);
  });

  it('a response already sent with keep-alive when the drain began still gets the grace', async () => {
    let finish: (() => void) | undefined;
    const { tracker, port } = await start((req, res) => {
      if (req.url === '/stream') {
        res.writeHead(200, { 'content-length': '4' }); // headers out: keep-alive
        res.write('ab');
        finish = () => res.end('cd');
      } else res.end(`answer ${req.url}`);
    });
    const c = rawClient(port);
    c.socket.write('GET /stream HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitFor(() => finish !== undefined && c.data().includes('ab'));
    const drained = tracker.drain([server], 5000);
    finish!();
    await waitFor(() => c.data().includes('abcd'));
    c.socket.write('GET /again HTTP/1.1\r\nHost: x\r\n\r\n');
    await c.closed;
    expect(await drained).toBe(true);
    expect(c.data()).toMatch(/answer \/again$/);
  });

  it('cuts what is left after the timeout and says so', async () => {
    const { tracker, port } = await start(() => {
      /* never answers */
    });
    const c = rawClient(port);
    c.socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitFor(() => tracker.inFlight === 1);
    expect(await tracker.drain([server], 200)).toBe(false);
    await c.closed;
  });

  it('closes a connection that sends nothing after a grace period', async () => {
    const { tracker, port, accepted } = await start((_req, res) => res.end('ok'));
    const c = rawClient(port);
    await waitFor(() => accepted() === 1);
    const started = Date.now();
    expect(await tracker.drain([server], 10_000)).toBe(true);
    await c.closed;
    expect(Date.now() - started).toBeLessThan(5000);
  });
});
