import { DEFAULTS, inContainer } from '@arb/core';
import { ConfigError } from './errors.js';
import type { ParsedConfig } from './schema.js';

/**
 * Defaults of DESIGN's option table; `PORT` and `WEB_CONCURRENCY` as Heroku-style hosts set
 * them; `subreaper` on in a container (`inContainer`: this process is PID 1, or the
 * environment and files of Docker, podman or Kubernetes are there).
 */
export function defaultsFrom(
  env: NodeJS.ProcessEnv,
  container: () => boolean = () => inContainer(process.pid, env),
): ParsedConfig {
  const problems: string[] = [];
  let bind = ['127.0.0.1:8000'];
  if (env.PORT !== undefined && env.PORT !== '') {
    if (!/^\d{1,5}$/.test(env.PORT) || Number(env.PORT) > 65535) {
      problems.push(`PORT=${JSON.stringify(env.PORT)} is not a port number`);
    } else bind = [`0.0.0.0:${env.PORT}`];
  }
  let workers = 1;
  if (env.WEB_CONCURRENCY !== undefined && env.WEB_CONCURRENCY !== '') {
    if (!/^\d+$/.test(env.WEB_CONCURRENCY) || Number(env.WEB_CONCURRENCY) < 1) {
      problems.push(
        `WEB_CONCURRENCY=${JSON.stringify(env.WEB_CONCURRENCY)} is not a whole number >= 1`,
      );
    } else workers = Number(env.WEB_CONCURRENCY);
  }
  if (problems.length) throw new ConfigError('environment', problems);
  const { workerExecArgv: _argv, ...plain } = DEFAULTS;
  return { ...plain, env: {}, bind, workers, subreaper: container() };
}
