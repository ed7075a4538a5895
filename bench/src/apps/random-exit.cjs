// A request listener that dies at random: after answering, one request in RANDOM_EXIT_EVERY
// (default 40) makes its worker call process.exit(1), as an app with a fatal bug would.
'use strict';
const every = Number(process.env.RANDOM_EXIT_EVERY ?? 40);
module.exports = (_req, res) => {
  res.setHeader('x-pid', String(process.pid));
  res.end('hello\n');
  if (Math.random() * every < 1) res.once('finish', () => process.exit(1));
};
