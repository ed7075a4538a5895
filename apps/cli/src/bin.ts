import module from 'node:module';

// Node.js >= 22.1 caches the bytecode of arb's modules across starts (docs/BENCHMARKS.md);
// NODE_DISABLE_COMPILE_CACHE=1 turns it off. The rest is imported after, so it is cached.
(module as { enableCompileCache?: () => unknown }).enableCompileCache?.();

const argv = process.argv.slice(2);

// `arb --help | head`: a reader that closed the pipe ends the output, not with a stack. Only
// for the commands that print and exit; a serving master never stops for a log destination.
if (
  argv.includes('--help') ||
  argv.includes('-h') ||
  /^(ctl|companion|top|help)$/.test(argv[0] ?? '')
) {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    process.exit(process.exitCode ?? 0);
  });
}
// `arb --version` needs nothing else: neither commander nor @arb/core (docs/BENCHMARKS.md)
if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-v')) {
  const { version } = await import('./version.js');
  process.stdout.write(`${version}\n`);
} else {
  const { main } = await import('./main.js');
  main(argv, {
    env: process.env,
    cwd: process.cwd(),
    stdout: process.stdout,
    stderr: process.stderr,
    // only `arb top` reads keys: touching process.stdin opens fd 0, which a master must not
    ...(argv[0] === 'top' ? { stdin: process.stdin } : {}),
    isTTY: process.stdout.isTTY === true,
  }).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(
        `arb: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
      );
      process.exitCode = 1;
    },
  );
}
