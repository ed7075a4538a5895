// supervise.mjs: `node supervise.mjs`, then from another terminal, in the same directory:
// `npx arb companion status --socket ./companions.sock`. Ctrl-C or TERM stops everything.
import { createLogger, Manager, request } from '@arb/companion';

const manager = new Manager({
  logger: createLogger(),
  companions: {
    socket: './companions.sock',
    restartDelay: 1,
    defaults: { stopTimeout: 5 },
    workers: [
      { name: 'ticker', command: ['node', '-e', "setInterval(() => console.log('tick'), 1000)"] },
      { name: 'sleeper', command: ['sleep', '3600'] },
    ],
  },
});
await manager.start();
console.log((await request('./companions.sock', { cmd: 'status' })).companions);
const stop = () => manager.stop().then(() => process.exit(0));
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
