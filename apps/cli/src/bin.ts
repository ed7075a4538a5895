import module from 'node:module';

// Node.js >= 22.1 caches the bytecode of arb's modules across starts (docs/BENCHMARKS.md);
// NODE_DISABLE_COMPILE_CACHE=1 turns it off. The rest is imported after, so it is cached.
(module as { enableCompileCache?: () => unknown }).enableCompileCache?.();

const [{ version }, { main }] = await Promise.all([import('./version.js'), import('./main.js')]);

main(process.argv.slice(2), {
  env: process.env,
  cwd: process.cwd(),
  stdout: process.stdout,
  stderr: process.stderr,
  version,
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
