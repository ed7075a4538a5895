// CommonJS: module.exports is the request listener.
module.exports = (_req, res) => res.end(JSON.stringify({ kind: 'cjs', pid: process.pid }));
