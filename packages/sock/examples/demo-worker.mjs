import http from 'node:http';
import { adopt, listenOn } from '@arb/sock';

const server = http.createServer((req, res) => {
  res.end(`hello from worker ${process.pid}: ${req.method} ${req.url}\n`);
});
for (const listener of adopt()) await listenOn(server, listener);
console.log(`worker ${process.pid}: serving`);

process.on('SIGINT', () => {}); // the master decides when workers stop (Ctrl-C reaches the group)
process.on('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeIdleConnections();
});
setInterval(() => process.ppid === 1 && process.exit(0), 500).unref();
