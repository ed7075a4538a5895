// resolve.mjs: `node resolve.mjs --check-config`, next to arb.config.ts and app.mjs.
import { ConfigError, main, resolveConfig, version } from 'arb';

// Resolve a command line the way `arb` does (defaults < config file < ARB_CMD_ARGS < argv).
// action: 'run' | 'check' | 'print'; config: every setting with its default, the hooks,
// and the config file used (workers re-import it for their hooks).
try {
  const { action, config } = await resolveConfig({
    argv: ['-w', '3'],
    env: process.env,
    cwd: process.cwd(),
    version,
  });
  console.log(`${action}: ${config.app} with ${config.workers} workers on ${config.bind}`);
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  console.error(error.message); // one line per problem, naming its source, key and value
}

// Or run the whole command: resolves to the exit status.
process.exitCode = await main(process.argv.slice(2), {
  env: process.env,
  cwd: process.cwd(),
  stdout: process.stdout,
  stderr: process.stderr,
  version,
});
