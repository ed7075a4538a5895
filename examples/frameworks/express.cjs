// Express 5, CommonJS: the app is a request listener.
const express = require('express');

const app = express();
app.get('/', (_req, res) => res.json({ kind: 'express', pid: process.pid }));
app.get('/slow', async (_req, res) => {
  await new Promise((r) => setTimeout(r, 200));
  res.json({ kind: 'express', pid: process.pid, slow: true });
});
module.exports = app;
