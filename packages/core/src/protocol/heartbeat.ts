import fs from 'node:fs';
import path from 'node:path';
import { monotonic } from '../clock.js';

/*
 * Heartbeat: gunicorn's WorkerTmp, kept faithful (reference §7.5). The master creates an
 * unlinked file per worker and hands its fd to the worker as a stdio slot; a timer on the
 * worker's event loop stamps the file's mtime with the system-wide monotonic clock; the
 * master compares that stamp with its own monotonic clock. Chosen over IPC pings because
 * the stamp is the time the worker's loop last ran, whatever the master was doing (no
 * queued messages to misread after a busy spell), the master does one fstat per worker per
 * pass with nothing to parse, it works while the IPC channel is congested, and
 * `workerTmpDir` keeps its meaning (put it on tmpfs).
 */

/** Master side: one worker's heartbeat file. */
export interface Heartbeat {
  /** The master's fd, passed to the worker in `stdio`. */
  readonly fd: number;
  /** Monotonic seconds of the worker's last stamp; undefined once closed or unreadable. */
  lastUpdate(): number | undefined;
  close(): void;
}

export interface HeartbeatOptions {
  dir: string;
  umask: number;
  /** Owner for a worker that drops privileges: it must still be able to stamp the file. */
  uid?: number;
  gid?: number;
}

/**
 * Creates the file (mode 0600 under `umask`), unlinks it, and stamps it with "now", so a
 * worker that never gets as far as its first stamp is timed out like a hung one.
 */
export function createHeartbeat(options: HeartbeatOptions): Heartbeat {
  if (!fs.existsSync(options.dir)) {
    throw new Error(`${options.dir} doesn't exist. Can't create workertmp.`);
  }
  const file = path.join(
    options.dir,
    `warb-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`,
  );
  const old = process.umask(options.umask);
  let fd: number;
  try {
    fd = fs.openSync(file, 'wx+', 0o600);
  } finally {
    process.umask(old);
  }
  let closed = false;
  try {
    if (options.uid !== undefined || options.gid !== undefined) {
      fs.fchownSync(fd, options.uid ?? -1, options.gid ?? -1);
    }
    stamp(fd);
  } finally {
    fs.unlinkSync(file);
  }
  return {
    fd,
    lastUpdate() {
      if (closed) return undefined;
      try {
        return fs.fstatSync(fd).mtimeMs / 1000;
      } catch {
        return undefined;
      }
    },
    close() {
      if (closed) return;
      closed = true;
      try {
        fs.closeSync(fd);
      } catch {
        // already closed
      }
    },
  };
}

/** Sets the file's times to the monotonic clock. */
export function stamp(fd: number): void {
  const t = monotonic();
  fs.futimesSync(fd, t, t);
}

/** How often a worker stamps: a quarter of the timeout, at most every second. */
export function heartbeatInterval(timeoutSeconds: number): number {
  return Math.max(50, Math.min(1000, (timeoutSeconds * 1000) / 4));
}

/**
 * Worker side: stamps the inherited fd from an event-loop timer, so a blocked loop stops the
 * stamps. The timer does not keep the process alive.
 */
export function startHeartbeat(fd: number, timeoutSeconds: number): () => void {
  const beat = () => {
    try {
      stamp(fd);
    } catch {
      // the master closed its side; the orphan check ends this process
    }
  };
  beat();
  const timer = setInterval(beat, heartbeatInterval(timeoutSeconds));
  timer.unref();
  return () => clearInterval(timer);
}
