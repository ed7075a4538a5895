import path from 'node:path';
import type { Listener } from '@arb/sock';
import { type ArbiterConfig, settingsOf } from '../config.js';
import { type ArbiterHooks, pickHooks, runHookSafely, type ServerView } from '../hooks.js';
import type { Logger } from '../logger.js';
import type { StatsMessage } from '../protocol/worker.js';
import { type ArbiterSettings, effectiveBootTimeout } from '../settings.js';
import { masterTitle } from '../titles.js';
import { CanaryWindow, judgeCanary } from './canary.js';
import type { ArbiterDeps } from './deps.js';
import { type Lineage, runsSidecar } from './lineage.js';
import {
  absorbsHalt,
  canaryCap,
  RELOAD_IDLE,
  type ReloadEffect,
  type ReloadEvent,
  type ReloadOutcome,
  type ReloadPhase,
  type ReloadState,
  reloadDeadline,
  reloadTransition,
} from './reload.js';
import { type ReloadProgress, reloadProgress, sameProgress } from './reload-progress.js';
import type { SidecarSpec } from './sidecar.js';
import type { WorkerProcess } from './worker-state.js';

/**
 * The config in force and its listeners: what a HUP reload replaces as one generation and
 * puts back on rollback. Generation 0 is the config the master started with; each reload
 * numbers a new one.
 */
export interface InForce {
  config: ArbiterConfig;
  settings: ArbiterSettings;
  hooks: Partial<ArbiterHooks>;
  listeners: Listener[];
  /**
   * The `bind` entries the listeners came from, index by index; undefined when they were
   * inherited (systemd, ARB_FD) and cannot be matched with the config: bind changes then
   * need a restart.
   */
  boundAs: string[] | undefined;
  generation: number;
}

/** The config of a master, generation by generation (apply, commit, restore). */
export class Generations {
  current: InForce;
  /** The config before the reload in progress (its rollback target). */
  private previous: InForce | undefined;
  /** Listeners the reload in progress bound (closed on rollback). */
  private added: Listener[] = [];
  /** Listeners the reload in progress dropped (closed once the old workers are gone). */
  private dropped: Listener[] = [];
  private counter = 0;
  /** The first config's reader: a config read by it may not carry one of its own. */
  private readonly reloadConfig: (() => Promise<ArbiterConfig>) | undefined;

  constructor(
    config: ArbiterConfig,
    private readonly deps: Pick<ArbiterDeps, 'createListeners' | 'closeListeners'>,
    private readonly log: Logger,
    /** The environment before this master changed anything (`env` settings are undone to it). */
    private readonly envOrig: NodeJS.ProcessEnv,
  ) {
    this.reloadConfig = config.reloadConfig;
    this.current = {
      config,
      settings: settingsOf(config),
      hooks: pickHooks(config),
      listeners: [],
      boundAs: undefined,
      generation: 0,
    };
  }

  /** Binds the listeners of generation 0; returns whether they came from systemd. */
  async bind(): Promise<boolean> {
    const s = this.current.settings;
    const made = await this.deps.createListeners({
      bind: s.bind,
      backlog: s.backlog,
      umask: s.umask,
      uid: s.user,
      gid: s.group,
      reusePort: s.reusePort,
      retries: s.bindRetries + 1,
      onRetry: (err, attempt) =>
        this.log.error(
          `${err.message}; retrying in 1 second (${attempt} of ${s.bindRetries} retries)`,
        ),
    });
    // index i came from bind[i] when every entry gave one listener of its own
    const matches =
      !made.systemd &&
      made.listeners.length === s.bind.length &&
      !s.bind.some((b) => b.startsWith('fd://'));
    this.current.listeners = made.listeners;
    this.current.boundAs = matches ? [...s.bind] : undefined;
    return made.systemd;
  }

  /** Reads the config afresh (`reloadConfig`), or the same one without a reader. */
  async read(): Promise<ArbiterConfig> {
    const reload = this.current.config.reloadConfig ?? this.reloadConfig;
    return reload ? reload() : this.current.config;
  }

  /**
   * Puts `next` in force as a new generation: validates it (throws `SettingError`, nothing
   * changed), binds the addresses it adds (throws when one cannot be bound), sets its `env`.
   */
  async apply(next: ArbiterConfig): Promise<void> {
    const settings = settingsOf(next);
    const previous = this.current;
    const bound = await this.rebind(settings);
    this.previous = previous;
    this.counter += 1;
    this.current = {
      config: next,
      settings,
      hooks: pickHooks(next),
      ...bound,
      generation: this.counter,
    };
    this.swapEnv(previous.settings.env, settings.env);
  }

  /** The new generation serves: no way back. */
  commit(): void {
    this.previous = undefined;
    this.added = [];
  }

  /** Puts the previous generation back (the listeners it bound are closed). */
  restore(unlink: boolean): boolean {
    const p = this.previous;
    if (!p) return false;
    this.previous = undefined;
    // the new generation's own listeners go; the kept ones were never closed
    this.deps.closeListeners(this.added, { unlink });
    this.added = [];
    this.dropped = [];
    this.swapEnv(this.current.settings.env, p.settings.env);
    this.current = p;
    return true;
  }

  /** Closes the listeners the new config dropped (the old workers are gone). */
  closeDropped(unlink: boolean): void {
    if (this.dropped.length === 0) return;
    this.log.info(
      { listeners: this.dropped.map((l) => l.address) },
      `Closing listeners dropped from the config: ${this.dropped.map((l) => l.url).join(',')}`,
    );
    this.deps.closeListeners(this.dropped, { unlink });
    this.dropped = [];
  }

  /** Closes every listener, those of a reload in progress included. */
  closeAll(unlink: boolean): void {
    const all = this.current.listeners;
    const extra = [...this.dropped, ...(this.previous?.listeners ?? [])].filter(
      (l) => !all.includes(l),
    );
    this.deps.closeListeners(all, { unlink });
    this.current.listeners = [];
    if (extra.length > 0) this.deps.closeListeners(extra, { unlink });
    this.dropped = [];
  }

  /**
   * Binds the addresses the new config adds (before its workers spawn, so they get them)
   * and sets aside the ones it drops (closed once the old workers are gone). The kept
   * listeners are never closed: their sockets, and unix socket inodes, stay.
   */
  private async rebind(s: ArbiterSettings): Promise<Pick<InForce, 'listeners' | 'boundAs'>> {
    const { listeners, boundAs, settings } = this.current;
    this.added = [];
    this.dropped = [];
    const unchanged = { listeners, boundAs };
    if (sameList(boundAs ?? settings.bind, s.bind)) return unchanged;
    if (!boundAs || s.reusePort !== settings.reusePort) {
      this.log.warn(
        'bind changed, but the listeners were inherited (systemd, ARB_FD) or reusePort changed: ' +
          'keeping the current listeners (restart to change them)',
      );
      return unchanged;
    }
    const byAddress = new Map(boundAs.map((b, i) => [b, listeners[i]!]));
    const toBind = s.bind.filter((b) => !byAddress.has(b));
    const made =
      toBind.length === 0
        ? []
        : (
            await this.deps.createListeners({
              bind: toBind,
              backlog: s.backlog,
              umask: s.umask,
              uid: s.user,
              gid: s.group,
              reusePort: s.reusePort,
              env: {}, // bind these: nothing to inherit
              retries: 1,
            })
          ).listeners;
    const fresh = new Map(toBind.map((b, i) => [b, made[i]!]));
    this.added = made;
    this.dropped = boundAs.filter((b) => !s.bind.includes(b)).map((b) => byAddress.get(b)!);
    const next = s.bind.map((b) => byAddress.get(b) ?? fresh.get(b)!);
    this.log.info(
      { listeners: next.map((l) => l.address) },
      `Listening at: ${next.map((l) => l.url).join(',')}`,
    );
    return { listeners: next, boundAs: [...s.bind] };
  }

  /** Undoes the `env` settings of the old config (back to the original values), sets the new. */
  private swapEnv(old: Record<string, string>, next: Record<string, string>): void {
    for (const k of Object.keys(old)) {
      if (this.envOrig[k] === undefined) delete process.env[k];
      else process.env[k] = this.envOrig[k];
    }
    for (const [k, v] of Object.entries(next)) process.env[k] = v;
  }
}

/**
 * A halt reason with the place the app failed when the worker told it: the rollback line
 * then reads `... could not load the app: app.mjs:3:1: SyntaxError: Unexpected token '}'`,
 * the edit to fix named in the one line (a development reload's whole point).
 */
function placedReason(worker: WorkerProcess, reason: string, dir: string): string {
  const app = worker.fatalApp;
  if (!app?.thrown || !app.where) return reason;
  const { file, line, column } = app.where;
  const place = `${path.relative(dir, file) || file}:${line}${column ? `:${column}` : ''}`;
  return `Worker (pid:${worker.pid}) could not load the app: ${place}: ${app.thrown}`;
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** What a reload asks of the master, besides the generations: the Arbiter itself. */
export interface ReloadMaster extends ServerView {
  readonly log: Logger;
  readonly generations: Generations;
  readonly lineage: Lineage;
  readonly procName: string;
  readonly hooks: Partial<ArbiterHooks>;
  readonly settings: ArbiterSettings;
  readonly numWorkers: number;
  readonly generation: number;
  readonly config: ArbiterConfig;
  readonly sidecar: { spec: SidecarSpec | undefined; reload(spec: SidecarSpec | undefined): void };
  readonly pool: {
    all(): WorkerProcess[];
    get(age: number): WorkerProcess | undefined;
    retire(w: WorkerProcess): Promise<void>;
    killNow(w: WorkerProcess): Promise<void>;
  };
  readonly signals: { push(sig: 'SIGHUP'): void };
  readonly control: {
    reloadEnded(outcome: ReloadOutcome): void;
    /** Where the reload stands, each time that changes (`arb ctl reload` prints it). */
    reloadProgress?(progress: ReloadProgress): void;
  };
  now(): number;
  setNumWorkers(value: number): Promise<void>;
  mayUnlink(): boolean;
}

/**
 * Holds the reload machine (`reload.ts`) and carries out its effects on the master: a
 * generation applied, committed or restored, workers retired or killed, the outcome told.
 */
export class Reloader {
  state: ReloadState = RELOAD_IDLE;
  /** The worker count before the reload in progress (its rollback target). */
  private workersBefore = 0;
  /** The stats of the canary window, while one is open. */
  private readonly window = new CanaryWindow();

  constructor(private readonly m: ReloadMaster) {}

  get active(): boolean {
    return this.state.phase !== 'idle';
  }
  get phase(): ReloadPhase {
    return this.state.phase;
  }
  /** Reloads begun so far. */
  get seq(): number {
    return this.state.seq;
  }

  /** HUP: loads the new config and puts it in force, or queues one more reload. */
  hup(): Promise<void> {
    return this.apply({ type: 'hup', generation: this.m.generation });
  }

  /**
   * A worker exited 3/4. Returns true when the reload takes it (a new-generation worker
   * while booting): it fails the reload instead of halting the master.
   */
  absorbHalt(worker: WorkerProcess, reason: string): boolean {
    if (!absorbsHalt(this.state, worker.generation)) return false;
    // no effects: the next step rolls back
    this.state = reloadTransition(this.state, {
      type: 'worker-halted',
      generation: worker.generation,
      reason: placedReason(worker, reason, this.m.settings.chdir),
    }).state;
    return true;
  }

  /** One pass of the master loop (after reaping and signals, before the pool's manage). */
  async step(): Promise<void> {
    for (;;) {
      const before = this.state.phase;
      await this.apply({
        type: 'step',
        now: this.m.now(),
        generation: this.m.generation,
        numWorkers: this.m.numWorkers,
        workers: this.m.pool.all(),
      });
      if (this.state.phase === before || this.state.phase === 'idle') return;
    }
  }

  nextDeadline(): number | undefined {
    return reloadDeadline(this.state);
  }

  /** The most new-generation workers to keep while a canary is judged (undefined: all). */
  get canaryCap(): number | undefined {
    return canaryCap(this.state);
  }

  /** A worker's batched counts: the canary window's evidence. */
  workerStats(worker: WorkerProcess, message: StatsMessage): void {
    this.window.add(worker.generation, message);
  }

  private async apply(event: ReloadEvent): Promise<void> {
    const { state, effects } = reloadTransition(this.state, event);
    this.state = state;
    if (state.phase !== 'canary-window') this.window.close();
    this.tellProgress();
    for (const effect of effects) await this.carryOut(effect);
  }

  private lastProgress: ReloadProgress | undefined;

  /** Says where the reload stands when that changed (the outcome itself is `reloadEnded`). */
  private tellProgress(): void {
    if (this.state.phase === 'idle' || !this.m.control.reloadProgress) return;
    const p = reloadProgress(this.state, this.m.pool.all(), this.m.numWorkers);
    if (sameProgress(this.lastProgress, p)) return;
    this.lastProgress = p;
    this.m.control.reloadProgress(p);
  }

  private async carryOut(effect: ReloadEffect): Promise<void> {
    const m = this.m;
    switch (effect.type) {
      case 'log':
        m.log[effect.level](effect.fields ?? {}, effect.msg);
        return;
      case 'apply-config':
        return this.apply(await this.applyConfig());
      case 'retire':
      case 'kill': {
        const w = m.pool.get(effect.age);
        if (!w) return;
        return effect.type === 'retire' ? m.pool.retire(w) : m.pool.killNow(w);
      }
      case 'commit-config':
        m.generations.commit();
        for (const line of m.config.sidecar?.warnings ?? []) m.log.warn(line);
        // an unpromoted re-exec'd master runs no sidecar (it would run twice): keep the spec
        if (runsSidecar(m.lineage)) m.sidecar.reload(m.config.sidecar);
        else m.sidecar.spec = m.config.sidecar;
        return;
      case 'close-dropped-listeners':
        m.generations.closeDropped(m.mayUnlink());
        return;
      case 'restore-config':
        if (!m.generations.restore(m.mayUnlink())) return;
        process.title = masterTitle(m.procName);
        if (m.numWorkers !== this.workersBefore) await m.setNumWorkers(this.workersBefore);
        return;
      case 'ended':
        m.control.reloadEnded(effect.outcome);
        return;
      case 'request-reload':
        m.signals.push('SIGHUP');
        return;
      case 'open-canary-window':
        this.window.open(this.state.target);
        return;
      case 'judge-canary': {
        const verdict = judgeCanary(this.window.canary, this.window.old, this.state.canary!);
        return this.apply({
          type: 'canary-judged',
          now: m.now(),
          workers: m.pool.all(),
          ...verdict,
        });
      }
    }
  }

  /**
   * Reads the new config and puts it in force (settings, hooks, env, new listeners bound,
   * `onReload`, worker count, a new generation number). Refused, nothing has changed.
   */
  private async applyConfig(): Promise<ReloadEvent> {
    const m = this.m;
    try {
      await m.generations.apply(await m.generations.read());
      process.title = masterTitle(m.procName);
      await runHookSafely(m.log, m.hooks, 'onReload', m);
      this.workersBefore = m.numWorkers;
      await m.setNumWorkers(m.settings.workers);
    } catch (err) {
      return { type: 'config-refused', err, generation: m.generation };
    }
    return {
      type: 'config-applied',
      now: m.now(),
      generation: m.generation,
      bootTimeout: effectiveBootTimeout(m.settings),
      workers: m.numWorkers,
      canary: m.settings.reload?.canary,
    };
  }
}
