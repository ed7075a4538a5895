import { EventEmitter } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';

/**
 * An append-only output file for companions, owned by the manager so it can be reopened
 * (USR1) after logrotate renames it. Companions write into a pipe; the manager copies the
 * bytes here. Emits `drain` when a write that returned false has been flushed.
 */
export class LogFile extends EventEmitter {
  private stream: WriteStream;
  private closed = false;
  /** The file failed (full disk, permissions): drop output rather than block the child. */
  private broken = false;

  constructor(readonly path: string) {
    super();
    this.stream = this.open();
  }

  private open(): WriteStream {
    // Mode 0644 (before umask) when created; appended to when it exists.
    const s = createWriteStream(this.path, { flags: 'a', mode: 0o644 });
    s.on('drain', () => this.emit('drain'));
    // A full disk or a vanished directory must not take the manager down.
    s.on('error', (err) => {
      if (this.broken || s !== this.stream) return;
      this.broken = true;
      this.emit('failure', err);
      // Whoever waits for drain must not wait for ever.
      this.emit('drain');
    });
    return s;
  }

  /** Returns false when the caller should pause until `drain`. */
  write(chunk: Buffer): boolean {
    if (this.closed || this.broken) return true;
    return this.stream.write(chunk);
  }

  /** Open the path again (a new file if it was renamed away) and finish the old stream. */
  reopen(): void {
    if (this.closed) return;
    const old = this.stream;
    this.broken = false;
    this.stream = this.open();
    old.end();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stream.end();
  }
}
