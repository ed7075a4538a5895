import { version } from './index.js';

const args = process.argv.slice(2);
if (args.includes('--version') || args.includes('-v')) {
  process.stdout.write(`arb ${version}\n`);
  process.exit(0);
}
process.stderr.write('arb: the command line is not implemented yet (see issue 5)\n');
process.exit(1);
