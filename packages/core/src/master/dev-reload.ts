import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { DevReloadConfig } from '../config.js';

// Development mode (`arb --reload`): the master watches the source tree and, on a change,
// reloads the way HUP does. Loaded only when the mode is on (the import is lazy).

export const DEFAULT_DEBOUNCE_MS = 150;

/** Never watched: dependencies change through an install, not an edit; git's own files. */
const ALWAYS_IGNORED = ['node_modules', '.git'];

/** An editor's swap, backup or lock file (vim, emacs): written while typing, not a save. */
function editorFile(name: string): boolean {
  return /\.sw[a-p]$|~$|^\.#/.test(name);
}

/** The watch could not be set up (a directory that cannot be read, inotify's limit reached). */
export class DevReloadError extends Error {
  override name = 'DevReloadError';
  constructor(
    readonly path: string,
    readonly code: string | undefined,
    message: string,
  ) {
    super(message);
  }
}

export interface SourceWatchOptions extends Pick<DevReloadConfig, 'ignore' | 'debounce'> {
  /** Directories watched with everything below them. */
  dirs: readonly string[];
  /** Single files (the config file outside those directories). */
  files: readonly string[];
  /**
   * Paths arb writes itself (sockets, pidfile, log files, heartbeat directory), with what
   * is below them: never a reason to reload.
   */
  own: readonly string[];
  /** The changed paths (absolute) once the tree has been quiet for `debounce` ms. */
  onChange: (paths: string[]) => void;
  /** A directory that appeared but could not be watched: the rest keeps working. */
  onWarning: (message: string) => void;
}

type Matcher = (p: string) => boolean;

/**
 * One non-recursive `fs.watch` (inotify) per directory, pruned as it walks. Node's own
 * `recursive: true` (Linux, Node >= 20) watches every directory below, node_modules
 * included, and cannot be told to skip one: in a real app that is thousands of inotify
 * watches for files an edit never touches.
 */
export class SourceWatcher {
  private readonly watchers = new Map<string, fs.FSWatcher>();
  private readonly changed = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly own: Set<string>;
  /** The single files watched through their directory: directory -> names. */
  private readonly single = new Map<string, Set<string>>();
  /**
   * The paths seen to exist: a path that is gone counts as a change only if it was one of
   * them (a temporary file renamed away before we looked is no edit).
   */
  private readonly known = new Set<string>();
  /** The directories watched with everything below them. */
  roots: string[] = [];

  private constructor(
    private readonly opts: SourceWatchOptions,
    private readonly byName: Matcher,
    private readonly byPath: Matcher,
  ) {
    this.own = new Set(opts.own.map((p) => path.resolve(p)));
  }

  /** Watches `dirs` and `files`; throws a {@link DevReloadError} when a root cannot be watched. */
  static async start(opts: SourceWatchOptions): Promise<SourceWatcher> {
    const globs = opts.ignore ?? [];
    const named = [...ALWAYS_IGNORED, ...globs.filter((g) => !g.includes('/'))];
    const pathed = globs.filter((g) => g.includes('/'));
    const byName = await matcher(named);
    const byPath = pathed.length > 0 ? await matcher(pathed) : () => false;
    const w = new SourceWatcher(opts, byName, byPath);
    try {
      const roots = outermost(opts.dirs.map((d) => path.resolve(d)));
      w.roots = roots;
      for (const root of roots) w.watchTree(root, root, true);
      for (const file of opts.files.map((f) => path.resolve(f))) {
        if (roots.some((r) => inside(r, file))) continue;
        const dir = path.dirname(file);
        let names = w.single.get(dir);
        if (!names) {
          names = new Set();
          w.single.set(dir, names);
          w.watchDir(dir, undefined, true);
        }
        names.add(path.basename(file));
      }
    } catch (err) {
      w.close();
      throw err;
    }
    return w;
  }

  /** The directories watched now (for tests and the start line). */
  get watched(): number {
    return this.watchers.size;
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
  }

  /** Whether a path below `root` is left out, by itself or by a directory above it. */
  private ignored(root: string, full: string): boolean {
    // a directory of arb's that holds the whole tree (the OS tmp dir) leaves it watched
    for (const o of this.own) if (o === full || (inside(o, full) && inside(root, o))) return true;
    const rel = path.relative(root, full).split(path.sep).join('/');
    if (rel === '' || rel.startsWith('..')) return false;
    const parts = rel.split('/');
    for (let i = 0; i < parts.length; i++) {
      if (this.byName(parts[i]!) || this.byPath(parts.slice(0, i + 1).join('/'))) return true;
    }
    return false;
  }

  /** Watches `dir` and every directory below it that is not ignored (symlinks not followed). */
  private watchTree(root: string, dir: string, strict: boolean): void {
    if (this.closed || this.watchers.has(dir) || this.ignored(root, dir)) return;
    if (!this.watchDir(dir, root, strict)) return;
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch (err) {
      this.unwatchable(dir, err, strict);
      return;
    }
    for (const e of entries) {
      const full = path.join(dir, e.name);
      this.known.add(full);
      if (e.isDirectory()) this.watchTree(root, full, strict);
    }
  }

  /** One watch; `root` undefined: a directory watched for its single files only. */
  private watchDir(dir: string, root: string | undefined, strict: boolean): boolean {
    let watcher: fs.FSWatcher;
    try {
      watcher = fs.watch(dir, { persistent: false }, (_event, name) =>
        this.event(dir, root, name === null ? undefined : String(name)),
      );
    } catch (err) {
      this.unwatchable(dir, err, strict);
      return false;
    }
    // the directory went away (or inotify dropped it): its entry goes, the parent tells
    watcher.on('error', () => this.unwatch(dir));
    this.watchers.set(dir, watcher);
    return true;
  }

  private unwatchable(dir: string, err: unknown, strict: boolean): void {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return; // gone between readdir and watch: nothing to watch
    const hint =
      code === 'ENOSPC'
        ? ': the inotify watch limit is reached (raise fs.inotify.max_user_watches, or ignore more)'
        : '';
    const message = `--reload: cannot watch ${dir}: ${code ?? (err as Error).message}${hint}`;
    if (strict) throw new DevReloadError(dir, code, message);
    this.opts.onWarning(message);
  }

  /** The directory and everything watched below it (it was removed or renamed away). */
  private unwatch(dir: string): void {
    for (const [d, w] of this.watchers) {
      if (d === dir || inside(dir, d)) {
        w.close();
        this.watchers.delete(d);
      }
    }
  }

  private event(dir: string, root: string | undefined, name: string | undefined): void {
    if (this.closed) return;
    const full = name === undefined ? dir : path.join(dir, name);
    if (root === undefined) {
      // the directory of a single file: only that file counts
      if (name === undefined || !this.single.get(dir)?.has(name)) return;
    } else if (this.ignored(root, full)) return;
    if (editorFile(path.basename(full))) return;
    let stat: fs.Stats | undefined;
    try {
      stat = fs.lstatSync(full);
    } catch {
      stat = undefined; // removed or renamed away
    }
    // a socket or FIFO appearing is a server at work, not an edit
    if (stat?.isSocket() || stat?.isFIFO()) return;
    if (stat) this.known.add(full);
    else if (!this.known.delete(full) && root !== undefined) return;
    if (root !== undefined) {
      if (stat?.isDirectory()) this.watchTree(root, full, false);
      else if (!stat && this.watchers.has(full)) this.unwatch(full);
    }
    this.changed.add(full);
    // every event restarts the wait: one reload for a burst of writes
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.fire(), this.opts.debounce ?? DEFAULT_DEBOUNCE_MS);
    this.timer.unref();
  }

  private fire(): void {
    this.timer = undefined;
    if (this.closed || this.changed.size === 0) return;
    const paths = [...this.changed];
    this.changed.clear();
    this.opts.onChange(paths);
  }
}

/** picomatch, loaded only when there are globs to match beyond plain names. */
async function matcher(globs: readonly string[]): Promise<Matcher> {
  const plain = globs.every((g) => !/[*?[\]{}()!+@\\]/.test(g));
  if (plain) {
    const names = new Set(globs);
    return (p) => names.has(p);
  }
  // picomatch is CommonJS: required, it is the function on every Node.js release (an ESM
  // import of it through the master's loaders has handed back its namespace instead)
  const picomatch = createRequire(import.meta.url)('picomatch') as typeof import('picomatch');
  return picomatch([...globs], { dot: true });
}

function inside(dir: string, p: string): boolean {
  const rel = path.relative(dir, p);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}

/** The directories not inside another one of the list (each watched once). */
function outermost(dirs: readonly string[]): string[] {
  const unique = [...new Set(dirs)];
  return unique.filter((d) => !unique.some((o) => o !== d && inside(o, d)));
}
