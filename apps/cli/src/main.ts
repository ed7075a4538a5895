// Each subcommand loads only its own modules: `arb ctl status` needs a socket client, not
// the master, the config schema or the companion manager.

export interface MainContext {
  env: NodeJS.ProcessEnv;
  cwd: string;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  /** Default: the `arb` package's (read only when serving: `arb ctl` needs none). */
  version?: string;
  /** The keys of `arb top`'s live view. */
  stdin?: NodeJS.ReadStream;
  /** Tables for humans when true; JSON otherwise (`--json` forces JSON). */
  isTTY?: boolean;
}

/**
 * Runs `arb` with the given arguments (without `node` and the script) and resolves to the
 * exit status: 0 clean stop, 1 usage or config error, 3 a worker failed to boot, 4 the app
 * could not be loaded (DESIGN's contract).
 */
export async function main(argv: readonly string[], ctx: MainContext): Promise<number> {
  if (argv[0] === 'companion') {
    const { runCompanionCommand } = await import('@arb/companion/command');
    return runCompanionCommand(argv.slice(1), {
      stdout: ctx.stdout,
      stderr: ctx.stderr,
      env: ctx.env,
      isTTY: ctx.isTTY ?? false,
      configSocket: async () => (await import('./companion-socket.js')).configSocket(ctx.cwd),
    });
  }
  if (argv[0] === 'ctl') {
    const { runCtlCommand } = await import('./ctl-command.js');
    return runCtlCommand(argv.slice(1), {
      stdout: ctx.stdout,
      stderr: ctx.stderr,
      env: ctx.env,
      cwd: ctx.cwd,
      isTTY: ctx.isTTY ?? false,
    });
  }
  if (argv[0] === 'top') {
    const { runTopCommand } = await import('./top-command.js');
    return runTopCommand(argv.slice(1), {
      stdout: ctx.stdout,
      stderr: ctx.stderr,
      ...(ctx.stdin ? { stdin: ctx.stdin } : {}),
      env: ctx.env,
      cwd: ctx.cwd,
      isTTY: ctx.isTTY ?? false,
    });
  }
  if (argv[0] === 'upgrade') {
    const { runUpgradeCommand } = await import('./upgrade.js');
    return runUpgradeCommand(argv.slice(1), ctx);
  }
  return serve(argv, ctx);
}

/** `arb [options] <app>`: resolve the config, then run the master (or check, or print). */
async function serve(argv: readonly string[], ctx: MainContext): Promise<number> {
  const [{ EarlyExit, resolveConfig }, { ConfigError }] = await Promise.all([
    import('./resolve.js'),
    import('./errors.js'),
  ]);
  const version = ctx.version ?? (await import('./version.js')).version;
  // the master's modules, once the command line asks for more than --version or --help
  let core: typeof import('@arb/core') | undefined;
  try {
    const { action, config } = await resolveConfig({
      argv,
      env: ctx.env,
      cwd: ctx.cwd,
      version,
    });
    if (action === 'print') {
      const { printConfig } = await import('./print-config.js');
      ctx.stdout.write(printConfig(config));
      return 0;
    }
    core = await import('@arb/core');
    const { Arbiter, appFile, loadApp } = core;
    const { toArbiterConfig } = await import('./compose.js');
    const arbiterConfig = toArbiterConfig(config, ctx.cwd);
    // HUP re-imports the config file and re-applies the command line and environment.
    arbiterConfig.reloadConfig = async () =>
      toArbiterConfig(
        (await resolveConfig({ argv, env: ctx.env, cwd: ctx.cwd, version })).config,
        ctx.cwd,
      );
    const dir = arbiterConfig.chdir ?? ctx.cwd;
    if (action === 'check') {
      await loadApp(config.app, dir);
      ctx.stdout.write(`arb: config OK, app ${config.app} loads\n`);
      return 0;
    }
    try {
      appFile(config.app, dir); // a typo in the app path fails here, before anything starts
    } catch (err) {
      const { commandTypo } = await import('./command-typo.js');
      const hint = commandTypo(config.app);
      ctx.stderr.write(`arb: ${hint ?? (err as Error).message}\n`);
      return hint ? 1 : 4;
    }
    const { appFailureLines, startErrorLines } = await import('./report.js');
    const { stopWithPackageManager } = await import('./parent-watch.js');
    const arbiter = new Arbiter(arbiterConfig);
    let told = false;
    const unwatch = stopWithPackageManager(ctx.env, ctx.stderr);
    let status: number;
    try {
      status = await arbiter.run({
        onStartError: (err) => {
          const lines = startErrorLines(err, ctx.cwd);
          if (lines) ctx.stderr.write(lines);
          told = lines !== undefined;
          return told;
        },
      });
    } finally {
      unwatch();
    }
    // a worker could not load the app: the master logged it; say where, for a person
    if (status === 4 && arbiter.appFailure && !told) {
      ctx.stderr.write(appFailureLines(arbiter.appFailure, ctx.cwd));
    }
    return status;
  } catch (err) {
    if (err instanceof EarlyExit) return err.exitCode;
    if (err instanceof ConfigError) {
      for (const line of err.message.split('\n')) ctx.stderr.write(`arb: ${line}\n`);
      return 1;
    }
    if (core && err instanceof core.AppLoadError) {
      const { startErrorLines } = await import('./report.js');
      ctx.stderr.write(startErrorLines(err, ctx.cwd) ?? `arb: ${err.message}\n`);
      return 1; // --check-config: a config problem, exit 1 as documented
    }
    throw err;
  }
}
