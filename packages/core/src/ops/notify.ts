import os from 'node:os';
import type { Logger } from '../logger.js';
import { loadLibc } from './libc.js';

/**
 * sd_notify(3) for the master. Node core has no AF_UNIX datagram sockets, so the datagram
 * is sent through `koffi` (see `libc.ts`) calling libc's socket/sendto/close directly.
 * That gives exact control of the address: a path, or an abstract name (`@name` → `\0name`, with the exact length
 * systemd binds it with; the usual addons pad or truncate it). `koffi` is an optional
 * dependency: without it, or off Linux, a warning is logged once and every call is a no-op.
 * Without `NOTIFY_SOCKET` everything is a silent no-op (gunicorn's behaviour).
 */

/** Sends one datagram to `address`; throws on failure. */
export type DatagramSender = (address: string, payload: Buffer) => void;

const AF_UNIX = 1;
const SOCK_DGRAM = 2;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const MSG_NOSIGNAL = 0x4000;
/** `sizeof(sun_path)` on Linux. */
const SUN_PATH_MAX = 108;

/** The `sockaddr_un` bytes and length for a NOTIFY_SOCKET value (`@` = abstract namespace). */
export function sockaddrUn(address: string): Buffer {
  const abstract = address.startsWith('@');
  const name = Buffer.from(abstract ? `\0${address.slice(1)}` : address, 'utf8');
  // a path is NUL-terminated; an abstract name is exactly its bytes
  const pathLen = abstract ? name.length : name.length + 1;
  if (name.length === 0 || pathLen > SUN_PATH_MAX) {
    throw new Error(`NOTIFY_SOCKET address is empty or too long: ${address}`);
  }
  const buf = Buffer.alloc(2 + pathLen);
  // sa_family_t in host byte order
  if (os.endianness() === 'LE') buf.writeUInt16LE(AF_UNIX, 0);
  else buf.writeUInt16BE(AF_UNIX, 0);
  name.copy(buf, 2);
  return buf;
}

let cachedSender: DatagramSender | null | undefined;
let loadError: string | undefined;

/** The koffi-based sender, or null (with the reason in `loadError`) when unavailable. */
export function loadDatagramSender(): DatagramSender | null {
  if (cachedSender !== undefined) return cachedSender;
  cachedSender = null;
  const loaded = loadLibc();
  if ('error' in loaded) {
    loadError = loaded.error;
    return null;
  }
  const { lib, errno } = loaded.libc;
  try {
    const socket = lib.func('int socket(int domain, int type, int protocol)');
    const sendto = lib.func(
      'long sendto(int fd, const void *buf, size_t len, int flags, const void *addr, uint32_t addrlen)',
    );
    const close = lib.func('int close(int fd)');
    cachedSender = (address, payload) => {
      const addr = sockaddrUn(address);
      const fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0) as number;
      if (fd < 0) throw new Error(`socket() failed (errno ${errno()})`);
      try {
        const sent = Number(sendto(fd, payload, payload.length, MSG_NOSIGNAL, addr, addr.length));
        if (sent < 0) throw new Error(`sendto(${address}) failed (errno ${errno()})`);
      } finally {
        close(fd);
      }
    };
  } catch (err) {
    loadError = `the optional dependency koffi is not usable: ${(err as Error).message}`;
    cachedSender = null;
  }
  return cachedSender;
}

export interface NotifierOptions {
  env?: NodeJS.ProcessEnv;
  log: Logger;
  /** Replaces the datagram sender (tests). */
  send?: DatagramSender | null;
}

/**
 * The master's systemd notifier. Every method is safe to call anywhere: it does nothing
 * without `NOTIFY_SOCKET`, and errors are logged at debug and swallowed.
 */
export class Notifier {
  readonly address: string | undefined;
  private readonly send: DatagramSender | null;
  private readonly log: Logger;
  private readonly env: NodeJS.ProcessEnv;
  private watchdogTimer: NodeJS.Timeout | undefined;
  /** Every state sent (tests and `arb ctl status`). */
  readonly sent: string[] = [];

  constructor(opts: NotifierOptions) {
    this.env = opts.env ?? process.env;
    this.log = opts.log;
    const address = this.env.NOTIFY_SOCKET;
    this.address = address ? address : undefined;
    if (!this.address) {
      this.send = null;
      return;
    }
    this.send = opts.send === undefined ? loadDatagramSender() : opts.send;
    if (!this.send) {
      this.log.warn(
        `NOTIFY_SOCKET is set but sd_notify is unavailable (${loadError ?? 'no sender'}); systemd will not be notified`,
      );
    }
  }

  get enabled(): boolean {
    return this.send !== null;
  }

  /** Sends one state string (`READY=1\nSTATUS=...`); true if it was sent. */
  notify(state: string): boolean {
    if (!this.address || !this.send) return false;
    try {
      this.send(this.address, Buffer.from(state, 'utf8'));
      this.sent.push(state);
      this.log.debug({ state }, 'sd_notify');
      return true;
    } catch (err) {
      this.log.debug({ err }, 'Exception while invoking sd_notify()');
      return false;
    }
  }

  ready(status: string, extra: string[] = []): void {
    this.notify(['READY=1', ...extra, `STATUS=${status}`].join('\n'));
  }

  reloading(status = 'Reloading'): void {
    this.notify(`RELOADING=1\nMONOTONIC_USEC=${monotonicUsec()}\nSTATUS=${status}`);
  }

  stopping(status = 'Shutting down'): void {
    this.stopWatchdog();
    this.notify(`STOPPING=1\nSTATUS=${status}`);
  }

  status(status: string): void {
    this.notify(`STATUS=${status}`);
  }

  /** Tells systemd the main process is now `pid` (a promoted master, or the old one handing over). */
  mainPid(pid: number, status: string, ready = false): void {
    this.notify([`MAINPID=${pid}`, ...(ready ? ['READY=1'] : []), `STATUS=${status}`].join('\n'));
  }

  /**
   * Pings `WATCHDOG=1` at half of `WATCHDOG_USEC` when systemd asks for it and the watchdog
   * is meant for us (`WATCHDOG_PID` absent or our pid; `force` after a promotion, when it
   * still names the old master).
   */
  startWatchdog(force = false): void {
    if (!this.enabled || this.watchdogTimer) return;
    const usec = Number(this.env.WATCHDOG_USEC);
    if (!Number.isFinite(usec) || usec <= 0) return;
    const pid = this.env.WATCHDOG_PID;
    if (!force && pid && Number(pid) !== process.pid) return;
    const ms = Math.max(1, Math.floor(usec / 2000));
    this.notify('WATCHDOG=1');
    this.watchdogTimer = setInterval(() => this.notify('WATCHDOG=1'), ms);
    this.watchdogTimer.unref();
  }

  stopWatchdog(): void {
    if (this.watchdogTimer) clearInterval(this.watchdogTimer);
    this.watchdogTimer = undefined;
  }
}

/** CLOCK_MONOTONIC in microseconds, as systemd wants in `MONOTONIC_USEC`. */
export function monotonicUsec(): string {
  return (process.hrtime.bigint() / 1000n).toString();
}
