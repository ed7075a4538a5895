// An async factory: arb awaits it once per worker and serves what it returns.
import http from 'node:http';

export async function createServer() {
  await new Promise((r) => setTimeout(r, 10)); // e.g. connect to a database
  return http.createServer((_req, res) =>
    res.end(JSON.stringify({ kind: 'factory', pid: process.pid })),
  );
}
