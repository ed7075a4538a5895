import type { ChildProcess, SpawnOptions, StdioOptions } from 'node:child_process';
import { type handoff, type Listener, withListenPid } from '@arb/sock';
import { type ArbiterHooks, runHookSafely, type ServerView } from '../hooks.js';
import type { Logger } from '../logger.js';
import { ENDPOINTS_VAR, type EndpointFd, encodeEndpoints } from '../ops/endpoint-handoff.js';
import type { ArbiterDeps } from './deps.js';
import { type Lineage, type LineageEvent, newMasterPid } from './lineage.js';
import { reapingMode } from './orphans.js';
import type { WorkerExit } from './worker-state.js';

/**
 * USR2: how a master starts its successor (gunicorn's reexec(), reference §1.11 and §7.7).
 *
 * Node cannot fork+exec, so the new master is a fresh child process: the same Node binary,
 * execArgv, script and arguments, started in the directory the old master started in,
 * with the environment the old master started with plus
 *
 * - `ARB_PID=<old master pid>`: it is an unpromoted `.2` master;
 * - the listeners at fd 3, 4, … and `ARB_FD=3,4,…` (the *child's* slot numbers) with
 *   `ARB_LISTENERS`, or under socket activation `LISTEN_FDS`/`LISTEN_FDNAMES` and a
 *   `LISTEN_PID` equal to the new master's own pid (a `/bin/sh` trampoline that execs in
 *   place, since spawn cannot know the pid beforehand);
 * - the metrics and health servers' listening sockets after the listeners, named in
 *   `ARB_ENDPOINTS` (see `ops/endpoint-handoff.ts`): the new master answers on them once it
 *   serves, so a probe is never refused while the masters change;
 * - an IPC channel after those, on which the new master says when it serves.
 *
 * It is not detached: it must be our child, so that our exit re-parents it — which is how
 * it learns it has been promoted.
 */

/** Variables that describe *this* process's inheritance; never passed on as they were. */
const INHERITANCE_VARS = [
  'ARB_PID',
  'ARB_FD',
  'ARB_LISTENERS',
  'ARB_BACKLOG',
  ENDPOINTS_VAR,
  'LISTEN_PID',
  'LISTEN_FDS',
  'LISTEN_FDNAMES',
  'NODE_CHANNEL_FD',
  'NODE_CHANNEL_SERIALIZATION_MODE',
] as const;

/** The IPC message a re-exec'd master sends its parent once its first generation serves. */
export interface ReexecServingMessage {
  type: 'arb:serving';
  pid: number;
}

export function isServingMessage(m: unknown): m is ReexecServingMessage {
  return (
    typeof m === 'object' &&
    m !== null &&
    (m as { type?: unknown }).type === 'arb:serving' &&
    typeof (m as { pid?: unknown }).pid === 'number'
  );
}

export interface ReexecInput {
  listeners: readonly Listener[];
  /** The listeners came from systemd: hand them on as systemd would. */
  systemd: boolean;
  /** Our pid, the new master's `ARB_PID`. */
  masterPid: number;
  /** The environment as it was when this master started (before `env` settings). */
  envOrig: NodeJS.ProcessEnv;
  /** The directory this master started in. */
  startCwd: string;
  execPath: string;
  execArgv: readonly string[];
  /** `process.argv`: `[node, script, ...args]`. */
  argv: readonly string[];
  handoff: typeof handoff;
  /** The metrics/health servers' sockets (this process's fds), handed on after the listeners. */
  endpoints?: readonly EndpointFd[];
}

/**
 * Why a master that is PID 1 of its PID namespace never re-execs: the new master is its
 * child, and when the old one (the namespace's init) exits the kernel kills every process
 * of the namespace, the new master and its workers with it.
 */
export const PID1_UPGRADE_REFUSED =
  'upgrade refused: arb is PID 1 of its namespace, and the new master would end with the old one; replace the container instead';

export interface ReexecPlan {
  command: string;
  args: string[];
  options: SpawnOptions & { env: NodeJS.ProcessEnv; stdio: StdioOptions; cwd: string };
}

/** What to `spawn` for the new master (pure: the unit tests check it field by field). */
export function reexecPlan(input: ReexecInput): ReexecPlan {
  const listeners = input.handoff(input.listeners, { systemd: input.systemd });
  const env: NodeJS.ProcessEnv = { ...input.envOrig };
  for (const k of INHERITANCE_VARS) delete env[k];
  Object.assign(env, listeners.env);
  env.ARB_PID = String(input.masterPid);
  const endpoints = input.endpoints ?? [];
  if (endpoints.length > 0) {
    const first = 3 + listeners.stdio.length;
    env[ENDPOINTS_VAR] = encodeEndpoints(endpoints.map((e, i) => ({ ...e, fd: first + i })));
  }
  const args = [...input.execArgv, ...input.argv.slice(1)];
  const [command, argv] = input.systemd
    ? withListenPid(input.execPath, args)
    : [input.execPath, args];
  return {
    command,
    args: argv,
    options: {
      cwd: input.startCwd,
      env,
      stdio: [
        'inherit',
        'inherit',
        'inherit',
        ...listeners.stdio,
        ...endpoints.map((e) => e.fd),
        'ipc',
      ],
    },
  };
}

/** What `Arbiter.upgrade()` resolves to. */
export interface UpgradeResult {
  ok: boolean;
  /** The new master's pid (also on failure when one was started). */
  newPid?: number;
  error?: string;
}

/**
 * The one-step upgrade (`Arbiter.upgrade()`), stepped by the master loop:
 *
 *   idle ─request→ requested ─new master started→ starting ─it serves→ retiring ─our workers gone→ idle (ok, halt)
 *                      │ refused                      │ it exits / not serving in time   │ it exits
 *                      ↓                              ↓                                  ↓
 *                    idle (failed)                  idle (failed, it gets TERM)        idle (failed, workers back)
 */
export type UpgradeState =
  | { readonly phase: 'idle' }
  | { readonly phase: 'requested'; readonly timeout: number }
  | {
      readonly phase: 'starting';
      readonly timeout: number;
      readonly deadline: number;
      readonly newPid: number;
    }
  | { readonly phase: 'retiring'; readonly newPid: number };

export type UpgradeEvent =
  | { type: 'request'; timeout: number }
  /** The outcome of the `reexec` effect. */
  | { type: 'started'; now: number; pid?: number; error?: string }
  /** A loop pass: what the master sees now. */
  | { type: 'step'; now: number; childPid: number; childServing: boolean; workers: number };

export type UpgradeEffect =
  /** Start the new master (USR2). */
  | { type: 'reexec' }
  /** WINCH: keep no worker, TERM every one. */
  | { type: 'retire-workers' }
  /** Keep the configured number of workers again. */
  | { type: 'restore-workers' }
  | { type: 'stop-new-master'; pid: number }
  /** Stop this master (TERM; its sockets are not unlinked while the new one lives). */
  | { type: 'halt' }
  | { type: 'done'; result: UpgradeResult };

export const UPGRADE_IDLE: UpgradeState = { phase: 'idle' };

export function upgradeTransition(
  state: UpgradeState,
  event: UpgradeEvent,
): { state: UpgradeState; effects: UpgradeEffect[] } {
  const fail = (result: UpgradeResult, first: UpgradeEffect[] = []) => ({
    state: UPGRADE_IDLE,
    effects: [...first, { type: 'done', result: { ...result, ok: false } } as UpgradeEffect],
  });
  switch (event.type) {
    case 'request':
      if (state.phase !== 'idle') return { state, effects: [] };
      return { state: { phase: 'requested', timeout: event.timeout }, effects: [] };
    case 'started':
      if (state.phase !== 'requested') return { state, effects: [] };
      if (event.pid === undefined) return fail({ ok: false, error: event.error });
      return {
        state: {
          phase: 'starting',
          timeout: state.timeout,
          deadline: event.now + state.timeout,
          newPid: event.pid,
        },
        effects: [],
      };
    case 'step':
      switch (state.phase) {
        case 'idle':
          return { state, effects: [] };
        case 'requested':
          return { state, effects: [{ type: 'reexec' }] };
        case 'starting':
          if (event.childPid !== state.newPid) {
            return fail({ ok: false, newPid: state.newPid, error: 'the new master exited' });
          }
          if (event.childServing) {
            return {
              state: { phase: 'retiring', newPid: state.newPid },
              effects: [{ type: 'retire-workers' }],
            };
          }
          if (event.now >= state.deadline) {
            return fail(
              {
                ok: false,
                newPid: state.newPid,
                error: `the new master did not serve within ${state.timeout}s`,
              },
              [{ type: 'stop-new-master', pid: state.newPid }],
            );
          }
          return { state, effects: [] };
        case 'retiring':
          if (event.childPid !== state.newPid) {
            // it died after serving: serve again ourselves
            return fail({ ok: false, newPid: state.newPid, error: 'the new master exited' }, [
              { type: 'restore-workers' },
            ]);
          }
          if (event.workers > 0) return { state, effects: [] };
          return {
            state: UPGRADE_IDLE,
            effects: [
              { type: 'done', result: { ok: true, newPid: state.newPid } },
              { type: 'halt' },
            ],
          };
      }
  }
}

/** When the upgrade needs the loop: the new master's deadline to serve. */
export function upgradeDeadline(state: UpgradeState): number | undefined {
  return state.phase === 'starting' ? state.deadline : undefined;
}

/** What the upgrade needs of its master: the Arbiter itself. */
export interface UpgradeHost extends ServerView {
  /** The endpoint servers whose sockets a new master inherits. */
  readonly control: { endpointFds(): EndpointFd[] };
  readonly deps: ArbiterDeps;
  readonly log: Logger;
  readonly envOrig: NodeJS.ProcessEnv;
  readonly startCwd: string;
  readonly lineage: Lineage;
  readonly listeners: Listener[];
  readonly systemd: boolean;
  readonly hooks: Partial<ArbiterHooks>;
  readonly reloader: { readonly active: boolean };
  readonly pool: { readonly size: number; killAll(sig: NodeJS.Signals): Promise<void> };
  readonly signals: { push(sig: 'SIGTERM'): void; wake(): void };
  setNumWorkers(value: number): Promise<void>;
  lineageEvent(event: LineageEvent): void;
}

/**
 * Where an upgrade stands, for `arb ctl upgrade` to print as it advances: `state` is the
 * machine's phase name as it is (`done` once it succeeded, before this master exits).
 */
export interface UpgradeProgress {
  state: string;
  newPid?: number;
  /** Workers this master still has. */
  workers: number;
  message: string;
}

export function upgradeProgress(
  state: UpgradeState,
  workers: number,
  pid: number,
): UpgradeProgress {
  const plural = (n: number) => `${n} old worker${n === 1 ? '' : 's'}`;
  switch (state.phase) {
    case 'requested':
      return { state: state.phase, workers, message: 'starting a new master' };
    case 'starting':
      return {
        state: state.phase,
        newPid: state.newPid,
        workers,
        message: `new master ${state.newPid} booting`,
      };
    case 'retiring':
      return {
        state: state.phase,
        newPid: state.newPid,
        workers,
        message: `new master ${state.newPid} serves; retiring master ${pid}'s workers: ${plural(workers)} left`,
      };
    default:
      return { state: state.phase, workers, message: state.phase };
  }
}

/** Starts new masters (USR2) and carries out the upgrade machine's effects. */
export class Upgrader {
  state: UpgradeState = UPGRADE_IDLE;
  private resolve: ((r: UpgradeResult) => void) | undefined;
  private onProgress: ((p: UpgradeProgress) => void) | undefined;
  private lastProgress: string | undefined;
  private newMaster: { child: ChildProcess; exit?: WorkerExit } | undefined;

  constructor(private readonly host: UpgradeHost) {}

  /** The reason this master can never upgrade in place, if there is one. */
  private get impossible(): string | undefined {
    return reapingMode(this.host.pid, false) === 'pid1' ? PID1_UPGRADE_REFUSED : undefined;
  }

  /**
   * USR2: starts a new master with our listeners. Refused while one we started lives,
   * while we are ourselves unpromoted, during a reload, and as PID 1.
   */
  async reexec(): Promise<{ pid?: number; error?: string }> {
    const { log, deps } = this.host;
    const refuse = (error: string) => {
      log.warn(error);
      return { error };
    };
    const impossible = this.impossible;
    if (impossible) return refuse(impossible);
    const role = this.host.lineage.role;
    if (role === 'parent') return refuse('USR2 signal ignored. Child exists.');
    if (role === 'awaiting-promotion') return refuse('USR2 signal ignored. Parent exists.');
    if (this.host.reloader.active) return refuse('USR2 signal ignored. A reload is in progress.');
    const plan = reexecPlan({
      listeners: this.host.listeners,
      systemd: this.host.systemd,
      masterPid: process.pid,
      envOrig: this.host.envOrig,
      startCwd: this.host.startCwd,
      execPath: process.execPath,
      execArgv: process.execArgv,
      argv: process.argv,
      handoff: deps.handoff,
      endpoints: this.host.control.endpointFds(),
    });
    // there is no forked pre-exec child in Node: preExec runs here, before the spawn
    await runHookSafely(log, this.host.hooks, 'preExec', this.host);
    let child: ChildProcess;
    try {
      child = deps.spawn(plan.command, plan.args, plan.options);
    } catch (err) {
      log.error({ err }, 'Cannot start a new master');
      return { error: `cannot start a new master: ${(err as Error).message}` };
    }
    if (child.pid === undefined) {
      child.once('error', () => {});
      log.error('Cannot start a new master');
      return { error: 'cannot start a new master' };
    }
    const pid = child.pid;
    const entry: { child: ChildProcess; exit?: WorkerExit } = { child };
    this.newMaster = entry;
    this.host.lineageEvent({ type: 'reexec-started', pid });
    // neither the child nor its IPC channel may keep this process alive after its halt
    child.unref?.();
    child.channel?.unref();
    child.on('message', (m) => {
      if (isServingMessage(m)) this.host.lineageEvent({ type: 'child-serving', pid });
    });
    child.once('exit', (code, signal) => {
      entry.exit = { code, signal };
      this.host.signals.wake();
    });
    const endpoints = this.host.control.endpointFds().length;
    const also = endpoints > 0 ? ` and ${endpoints} endpoint sockets` : '';
    log.info(
      `Started a new master (pid:${pid}) with ${this.host.listeners.length} listeners${also}`,
    );
    return { pid };
  }

  /** The new master we started exited: USR2 works again. */
  reap(): void {
    const exit = this.newMaster?.exit;
    const pid = this.newMaster?.child.pid;
    if (!exit || pid === undefined) return;
    this.newMaster = undefined;
    this.host.log.warn(
      { code: exit.code, signal: exit.signal },
      `New master (pid:${pid}) exited (${exit.signal ?? `code ${exit.code}`})`,
    );
    this.host.lineageEvent({ type: 'child-exited', pid });
  }

  /** Our halt: the new master's IPC channel must not keep it waiting for us. */
  disconnect(): void {
    const child = this.newMaster?.child;
    if (child?.connected && typeof child.disconnect === 'function') child.disconnect();
  }

  /**
   * `Arbiter.upgrade()`: stepped by the loop from the next pass on; `onProgress` hears each
   * step (`arb ctl upgrade`).
   */
  request(timeout: number, onProgress?: (p: UpgradeProgress) => void): Promise<UpgradeResult> {
    const impossible = this.impossible;
    if (impossible) {
      this.host.log.warn(impossible);
      return Promise.resolve({ ok: false, error: impossible });
    }
    if (this.state.phase !== 'idle') {
      return Promise.resolve({ ok: false, error: 'an upgrade is in progress' });
    }
    return new Promise((resolve) => {
      this.resolve = resolve;
      this.onProgress = onProgress;
      this.lastProgress = undefined;
      void this.apply({ type: 'request', timeout });
      this.host.signals.wake();
    });
  }

  /** One pass of the master loop. */
  step(): Promise<void> {
    const l = this.host.lineage;
    return this.apply({
      type: 'step',
      now: this.host.deps.now(),
      childPid: newMasterPid(l),
      childServing: l.role === 'parent' && l.childServing,
      workers: this.host.pool.size,
    });
  }

  nextDeadline(): number | undefined {
    return upgradeDeadline(this.state);
  }

  /** Says where the upgrade stands when that changed. */
  private tellProgress(): void {
    if (!this.onProgress || this.state.phase === 'idle') return;
    const p = upgradeProgress(this.state, this.host.pool.size, this.host.pid);
    if (p.message === this.lastProgress) return;
    this.lastProgress = p.message;
    this.onProgress(p);
  }

  private async apply(event: UpgradeEvent): Promise<void> {
    const { state, effects } = upgradeTransition(this.state, event);
    this.state = state;
    this.tellProgress();
    for (const effect of effects) {
      switch (effect.type) {
        case 'reexec': {
          const started = await this.reexec();
          await this.apply({ type: 'started', now: this.host.deps.now(), ...started });
          break;
        }
        case 'retire-workers':
          this.host.log.info('Upgrade: new master serves; graceful stop of the old workers');
          await this.host.setNumWorkers(0);
          await this.host.pool.killAll('SIGTERM');
          break;
        case 'restore-workers':
          await this.host.setNumWorkers(this.host.settings.workers);
          break;
        case 'stop-new-master':
          try {
            this.host.deps.kill(effect.pid, 'SIGTERM');
          } catch {
            // gone already
          }
          break;
        case 'halt':
          this.host.signals.push('SIGTERM'); // the new master lives: sockets are not unlinked
          break;
        case 'done': {
          const r = effect.result;
          if (r.ok) this.host.log.info(`Upgrade: new master (pid:${r.newPid}) took over`);
          else this.host.log.error(`Upgrade failed: ${r.error}; this master keeps serving`);
          if (r.ok) {
            this.onProgress?.({
              state: 'done',
              newPid: r.newPid,
              workers: 0,
              message: `old workers retired; master ${this.host.pid} exits for new master ${r.newPid}`,
            });
          }
          this.onProgress = undefined;
          this.resolve?.(r);
          this.resolve = undefined;
        }
      }
    }
  }
}
