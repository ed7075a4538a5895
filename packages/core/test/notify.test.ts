import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { NotifyReceiver } from '@arb/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../src/logger.js';
import { loadDatagramSender, Notifier, sockaddrUn } from '../src/ops/notify.js';

const log = createLogger({ proc: 'master', level: 'fatal', dest: '-' }).log;
const receivers: NotifyReceiver[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const r of receivers.splice(0)) await r.close();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

async function until(fn: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('sockaddrUn', () => {
  it('NUL-terminates a path and keeps an abstract name to its exact length', () => {
    const p = sockaddrUn('/run/x');
    expect(p.length).toBe(2 + 6 + 1);
    expect(p.subarray(2).toString('latin1')).toBe('/run/x\0');
    const a = sockaddrUn('@abc');
    expect(a.length).toBe(2 + 4);
    expect(a.subarray(2).toString('latin1')).toBe('\0abc');
  });
  it('rejects an empty or too long address', () => {
    expect(() => sockaddrUn('')).toThrow();
    expect(() => sockaddrUn(`/${'x'.repeat(120)}`)).toThrow();
  });
});

describe('Notifier', () => {
  it('does nothing without NOTIFY_SOCKET', () => {
    const n = new Notifier({ env: {}, log });
    expect(n.enabled).toBe(false);
    expect(n.notify('READY=1')).toBe(false);
  });

  it('is a no-op with a warning when no sender is available', () => {
    const warnings: string[] = [];
    const fake = { ...log, warn: (m: string) => warnings.push(m) } as unknown as typeof log;
    const n = new Notifier({ env: { NOTIFY_SOCKET: '@x' }, log: fake, send: null });
    expect(n.enabled).toBe(false);
    expect(n.notify('READY=1')).toBe(false);
    expect(warnings.join()).toMatch(/sd_notify is unavailable/);
  });

  it('has a real sender here (koffi is installed)', () => {
    expect(loadDatagramSender()).not.toBeNull();
  });

  it.each(['abstract', 'path'])('sends real datagrams to a %s address', async (kind) => {
    let address: string | undefined;
    if (kind === 'path') {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'arbn-'));
      dirs.push(dir);
      address = path.join(dir, 'notify.sock');
    }
    const r = new NotifyReceiver(address);
    receivers.push(r);
    await r.ready();
    const n = new Notifier({ env: { NOTIFY_SOCKET: r.address }, log });
    expect(n.enabled).toBe(true);
    n.ready('Serving with 2 workers');
    n.reloading();
    n.stopping();
    await until(() => r.messages.length === 3);
    expect(r.messages[0]).toBe('READY=1\nSTATUS=Serving with 2 workers');
    expect(r.messages[1]).toMatch(/^RELOADING=1\nMONOTONIC_USEC=\d+\nSTATUS=Reloading$/);
    expect(r.messages[2]).toBe('STOPPING=1\nSTATUS=Shutting down');
  });

  it('logs and swallows a send to nobody', () => {
    const n = new Notifier({ env: { NOTIFY_SOCKET: `@arb-nobody-${process.pid}` }, log });
    expect(n.notify('READY=1')).toBe(false);
  });

  it('pings the watchdog at half of WATCHDOG_USEC, only for its own pid', async () => {
    const r = new NotifyReceiver();
    receivers.push(r);
    await r.ready();
    const other = new Notifier({
      env: { NOTIFY_SOCKET: r.address, WATCHDOG_USEC: '200000', WATCHDOG_PID: '1' },
      log,
    });
    other.startWatchdog();
    const n = new Notifier({
      env: { NOTIFY_SOCKET: r.address, WATCHDOG_USEC: '200000', WATCHDOG_PID: String(process.pid) },
      log,
    });
    n.startWatchdog();
    await until(() => r.messages.filter((m) => m === 'WATCHDOG=1').length >= 3);
    n.stopWatchdog();
    other.stopWatchdog();
    expect(r.states()).toEqual([]);
  });
});
