import type { Listener } from '@arb/sock';
import { type ArbiterConfig, settingsOf } from '../config.js';
import { type ArbiterHooks, pickHooks } from '../hooks.js';
import type { Logger } from '../logger.js';
import type { ArbiterSettings } from '../settings.js';
import type { ArbiterDeps } from './deps.js';

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

  constructor(
    config: ArbiterConfig,
    private readonly deps: Pick<ArbiterDeps, 'createListeners' | 'closeListeners'>,
    private readonly log: Logger,
    /** The environment before this master changed anything (`env` settings are undone to it). */
    private readonly envOrig: NodeJS.ProcessEnv,
  ) {
    this.current = {
      config,
      settings: settingsOf(config),
      hooks: pickHooks(config),
      listeners: [],
      boundAs: undefined,
      generation: 0,
    };
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

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
