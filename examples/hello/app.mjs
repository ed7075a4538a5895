// A plain Node request listener: arb's workers serve it on the sockets the master bound.
let served = 0;

export default function hello(req, res) {
  served += 1;
  res.setHeader('content-type', 'text/plain; charset=utf-8');
  res.end(`hello from worker ${process.pid} (request ${served} here): ${req.method} ${req.url}\n`);
}
