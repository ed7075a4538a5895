// A Node request listener (req, res): the default export.
export default (req, res) =>
  res.end(JSON.stringify({ kind: 'plain', pid: process.pid, url: req.url }));
