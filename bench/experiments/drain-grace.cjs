// Profiling experiment for docs/BENCHMARKS.md (not used by `pnpm bench`): preload it in arb's
// workers with NODE_OPTIONS="--require <this file>" to test the keep-alive drain fix.
// Once a worker gets SIGTERM (reload, upgrade, stop), the first destroySoon() of a socket
// waits 1 s, so a request the client already sent on an idle keep-alive connection is read
// and answered (arb marks it `Connection: close`) instead of being reset.
'use strict';
const net = require('node:net');

if (process.env.ARB_FD) {
  let draining = false;
  process.prependListener('SIGTERM', () => {
    draining = true;
  });
  const orig = net.Socket.prototype.destroySoon;
  net.Socket.prototype.destroySoon = function destroySoon() {
    if (!draining || this.__graced) return orig.call(this);
    this.__graced = true;
    const t = setTimeout(() => orig.call(this), 1000);
    this.once('close', () => clearTimeout(t));
  };
}
