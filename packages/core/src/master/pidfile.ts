import fs from 'node:fs';
import path from 'node:path';
import { PidfileError } from '../errors.js';

/** `process.kill`'s shape, injectable for tests. */
export type KillFn = (pid: number, signal: NodeJS.Signals | 0) => void;

/**
 * gunicorn's pidfile: written atomically (temp file + rename in the same directory),
 * refused while another live process owns it, removed only if it still holds our pid.
 */
export class Pidfile {
  private pid: number | undefined;

  constructor(
    public path: string,
    private readonly kill: KillFn = process.kill.bind(process) as KillFn,
  ) {}

  /**
   * Claims the file for `pid`: written to a temp file, then hard-linked into place, which
   * fails if the file exists (O_EXCL semantics: of two masters started together exactly one
   * wins). A stale file (dead pid, garbage) is removed and the claim retried once. Throws
   * {@link PidfileError} naming the path when a live other process owns it, when the path
   * is a directory, or when its directory is missing.
   */
  create(pid: number): void {
    const dir = path.dirname(this.path);
    const dirStat = fs.statSync(dir, { throwIfNoEntry: false });
    if (!dirStat) {
      throw new PidfileError(
        this.path,
        `Can't create pidfile ${this.path}: directory ${dir} doesn't exist`,
      );
    }
    if (!dirStat.isDirectory()) {
      throw new PidfileError(
        this.path,
        `Can't create pidfile ${this.path}: ${dir} is not a directory`,
      );
    }
    if (fs.statSync(this.path, { throwIfNoEntry: false })?.isDirectory()) {
      throw new PidfileError(this.path, `Can't create pidfile ${this.path}: it is a directory`);
    }
    const tmp = path.join(dir, `.${path.basename(this.path)}.${process.pid}.${Date.now()}.tmp`);
    let fd: number;
    try {
      fd = fs.openSync(tmp, 'wx', 0o644);
    } catch (err) {
      const why = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      throw new PidfileError(this.path, `Can't create pidfile ${this.path}: ${why}`);
    }
    try {
      fs.writeSync(fd, `${pid}\n`);
    } finally {
      fs.closeSync(fd);
    }
    try {
      fs.chmodSync(tmp, 0o644);
      for (let attempt = 0; ; attempt++) {
        try {
          fs.linkSync(tmp, this.path);
          this.pid = pid;
          return;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw err;
        }
        const owner = this.validate();
        if (owner === pid) {
          this.pid = pid;
          return;
        }
        if (owner !== undefined) {
          throw new PidfileError(
            this.path,
            `Already running on PID ${owner} (or pid file '${this.path}' is stale)`,
            owner,
          );
        }
        fs.rmSync(this.path, { force: true }); // stale: a dead pid or garbage
      }
    } finally {
      fs.rmSync(tmp, { force: true });
    }
  }

  /** The pid of the live process the file names, or undefined (missing, malformed, stale). */
  validate(): number | undefined {
    let text: string;
    try {
      text = fs.readFileSync(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    const trimmed = text.trim();
    if (!/^\d+$/.test(trimmed)) return undefined;
    const pid = Number(trimmed);
    try {
      this.kill(pid, 0);
      return pid;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EPERM') return pid;
      if (code === 'ESRCH') return undefined;
      throw err;
    }
  }

  /** Removes the file if it still holds the pid we wrote; never throws. */
  unlink(): void {
    try {
      if (
        this.pid !== undefined &&
        fs.readFileSync(this.path, 'utf8').trim() === String(this.pid)
      ) {
        fs.unlinkSync(this.path);
      }
    } catch {
      // gone already, or not ours to remove
    }
  }

  /** Moves the pidfile to a new path (promotion after a re-exec). */
  rename(newPath: string): void {
    const pid = this.pid;
    this.unlink();
    this.path = newPath;
    if (pid !== undefined) this.create(pid);
  }
}
