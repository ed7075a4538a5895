import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/**
 * npm's own entry points, run with the node running this suite: the Node.js builds used for
 * the version matrix ship `node` alone, so `npm` on PATH may belong to another node.
 * Looked up next to this node first, then through the `npm` on PATH.
 */
export function npmEntries(): { npm: string; npx: string } {
  const dirs = [path.join(path.dirname(process.execPath), '../lib/node_modules/npm/bin')];
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const bin = path.join(dir, 'npm');
    if (dir && fs.existsSync(bin)) dirs.push(path.dirname(fs.realpathSync(bin)));
  }
  for (const dir of dirs) {
    const npm = path.join(dir, 'npm-cli.js');
    const npx = path.join(dir, 'npx-cli.js');
    if (fs.existsSync(npm) && fs.existsSync(npx)) return { npm, npx };
  }
  throw new Error(`npm-cli.js not found in ${dirs.join(', ')}`);
}

/**
 * The environment of a consumer's shell: this node first on PATH (the `arb` launcher runs
 * `node`), and nothing of the package manager running the suite (`npm_config_*` from pnpm)
 * or of arb's own variables.
 */
export function consumerEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^(npm_|pnpm_|ARB_|LISTEN_)/i.test(key)) continue;
    if (['PORT', 'WEB_CONCURRENCY', 'NOTIFY_SOCKET', 'INIT_CWD'].includes(key)) continue;
    env[key] = value;
  }
  env.PATH = [path.dirname(process.execPath), process.env.PATH].join(path.delimiter);
  return { ...env, ...extra };
}

/** Runs a command to completion; rejects with its output when it fails. */
export function run(
  file: string,
  args: string[],
  opts: { cwd: string; env?: NodeJS.ProcessEnv },
): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      { cwd: opts.cwd, env: opts.env ?? consumerEnv(), maxBuffer: 16 << 20, timeout: 80_000 },
      (error, stdout, stderr) => {
        if (error) {
          const cmd = [file, ...args].join(' ');
          reject(new Error(`${cmd} (in ${opts.cwd}) failed: ${error.message}\n${stdout}${stderr}`));
        } else resolve({ stdout, stderr });
      },
    );
  });
}

/** `npm ...` and `npx ...` with this node. */
export const npm = (args: string[], cwd: string, env?: NodeJS.ProcessEnv) =>
  run(process.execPath, [npmEntries().npm, ...args], { cwd, env });
export const npx = (args: string[], cwd: string, env?: NodeJS.ProcessEnv) =>
  run(process.execPath, [npmEntries().npx, ...args], { cwd, env });
