import http from 'node:http';
import { defineConfig } from 'arb';

/** One request to `host:port`: the body, or undefined when nothing answered. */
function get(host: string, port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const req = http.get({ host, port, agent: false, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        body += d;
      });
      res.on('end', () => resolve(body));
    });
    // nothing of this check may keep the master from exiting when it is stopped
    req.on('socket', (socket) => socket.unref());
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
  });
}

/**
 * Resolves once `workers` distinct workers answered at `address` (host:port): the workers
 * serve. (The master's socket refuses connections until a worker listens on it.)
 */
async function served(address: string, workers: number, timeoutMs: number): Promise<boolean> {
  const i = address.lastIndexOf(':');
  const [host, port] = [address.slice(0, i), Number(address.slice(i + 1))];
  const seen = new Set<string>();
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const pid = /worker (\d+)/.exec((await get(host, port)) ?? '')?.[1];
    if (pid) seen.add(pid);
    if (seen.size >= workers) return true;
    if (!pid) await new Promise((r) => setTimeout(r, 100).unref());
  }
  return false;
}

export default defineConfig({
  app: './app.mjs',
  bind: '127.0.0.1:8000',
  workers: 2,
  timeout: 30,
  gracefulTimeout: 10,
  companions: {
    socket: './companions.sock',
    restartDelay: 1,
    workers: [{ name: 'jobs', target: './jobs.mjs:run', stopTimeout: 5 }],
  },
  whenReady(server) {
    // the hook runs before the workers: say "ready" once every one of them answers, without
    // holding the master up (-b or ARB_CMD_ARGS may have moved the address)
    // (a port 0 is known to the workers only: nothing to try then)
    const address = server.settings.bind.find(
      (b) => /^[^/]+:\d+$/.test(b) && !b.startsWith('unix:') && !b.endsWith(':0'),
    );
    if (!address) return;
    void served(address, server.numWorkers, 60_000).then((ok) => {
      if (ok) {
        console.log(
          `arb: ready; try curl ${address}, kill -HUP / -TTIN / -TTOU the master (pid ${server.pid})`,
        );
      }
    });
  },
});
