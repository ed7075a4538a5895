import { runCompanionCommand } from '@arb/companion';
import { AppLoadError, Arbiter, appFile, loadApp } from '@arb/core';
import { toArbiterConfig } from './compose.js';
import { runCtlCommand } from './ctl-command.js';
import { ConfigError } from './errors.js';
import { printConfig } from './print-config.js';
import { EarlyExit, resolveConfig } from './resolve.js';
import { runUpgradeCommand } from './upgrade.js';

export interface MainContext {
  env: NodeJS.ProcessEnv;
  cwd: string;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  version: string;
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
    return runCompanionCommand(argv.slice(1), {
      stdout: ctx.stdout,
      stderr: ctx.stderr,
      env: ctx.env,
      isTTY: ctx.isTTY ?? false,
    });
  }
  if (argv[0] === 'ctl') {
    return runCtlCommand(argv.slice(1), {
      stdout: ctx.stdout,
      stderr: ctx.stderr,
      env: ctx.env,
      cwd: ctx.cwd,
      isTTY: ctx.isTTY ?? false,
    });
  }
  if (argv[0] === 'upgrade') return runUpgradeCommand(argv.slice(1), ctx);
  try {
    const { action, config } = await resolveConfig({
      argv,
      env: ctx.env,
      cwd: ctx.cwd,
      version: ctx.version,
    });
    if (action === 'print') {
      ctx.stdout.write(printConfig(config));
      return 0;
    }
    const arbiterConfig = toArbiterConfig(config, ctx.cwd);
    // HUP re-imports the config file and re-applies the command line and environment.
    arbiterConfig.reloadConfig = async () =>
      toArbiterConfig(
        (await resolveConfig({ argv, env: ctx.env, cwd: ctx.cwd, version: ctx.version })).config,
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
      ctx.stderr.write(`arb: ${(err as Error).message}\n`);
      return 4;
    }
    return await new Arbiter(arbiterConfig).run();
  } catch (err) {
    if (err instanceof EarlyExit) return err.exitCode;
    if (err instanceof ConfigError) {
      for (const line of err.message.split('\n')) ctx.stderr.write(`arb: ${line}\n`);
      return 1;
    }
    if (err instanceof AppLoadError) {
      ctx.stderr.write(`arb: ${err.message}\n`);
      return 1; // --check-config: a config problem, exit 1 as documented
    }
    throw err;
  }
}
