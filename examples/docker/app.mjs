// The app: a plain Node request listener. arb's workers serve it on the sockets the master
// bound; nothing here knows about containers.
export default function app(req, res) {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ pid: process.pid, method: req.method, url: req.url }));
}
