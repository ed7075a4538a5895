import { parseCompanions, request } from '@arb/companion';
import type { CompanionSummary, ControlOptions } from '@arb/core';
import { ctlSocketPath } from './ctl-path.js';
import type { ResolvedConfig } from './resolve.js';

/**
 * The arbiter's control options from the config: the ctl socket (default `./arb.ctl`,
 * relative to the directory arb was started in), the metrics and health addresses, and the companions'
 * status read from the companion manager's own control socket, when it has one.
 */
export function controlOptions(
  config: ResolvedConfig,
  cwd: string,
  baseDir: string,
): ControlOptions {
  const out: ControlOptions = {};
  const socket = ctlSocketPath(config.ctl?.socket, cwd);
  if (socket) out.socket = socket;
  if (config.metrics?.bind) out.metricsBind = config.metrics.bind;
  if (config.health?.bind) out.healthBind = config.health.bind;
  const companionSocket = companionSocketOf(config.companions, baseDir);
  if (companionSocket) {
    out.companions = async () => {
      const res = await request(
        companionSocket,
        { cmd: 'status' },
        { timeoutMs: 2000, retryMs: 0 },
      );
      if (!res.ok || !Array.isArray(res.companions)) {
        throw new Error(String(res.error ?? 'the companion manager did not answer'));
      }
      return (res.companions as CompanionSummary[]).map((c) => ({
        name: c.name,
        state: c.state,
        pid: c.pid,
        restarts: c.restarts,
        uptime: c.uptime ?? null,
        description: c.description,
      }));
    };
  }
  return out;
}

function companionSocketOf(
  companions: ResolvedConfig['companions'],
  baseDir: string,
): string | null {
  if (!companions) return null;
  try {
    return parseCompanions(companions, { baseDir }).socket;
  } catch {
    return null; // reported where the sidecar is built
  }
}
