// upstream's TestSignalQueue / TestSignalHandlerRegistration (reference §6.2), for the
// coalesced, bounded queue.
import { describe, expect, it } from 'vitest';
import { MASTER_SIGNALS, Wakeup } from '../src/master/wakeup.js';

describe('the master signal queue', () => {
  it('lists the signals gunicorn handles', () => {
    expect([...MASTER_SIGNALS].sort()).toEqual(
      [
        'SIGHUP',
        'SIGQUIT',
        'SIGINT',
        'SIGTERM',
        'SIGTTIN',
        'SIGTTOU',
        'SIGUSR1',
        'SIGUSR2',
        'SIGWINCH',
      ].sort(),
    );
  });

  it('a received signal is queued, in order', async () => {
    const q = new Wakeup();
    q.push('SIGHUP');
    q.push('SIGTERM');
    q.push('SIGTTIN');
    expect(await q.wait(1000)).toEqual(['SIGHUP', 'SIGTERM', 'SIGTTIN']);
    expect(q.size).toBe(0);
  });

  it('wait returns as soon as a signal arrives', async () => {
    const q = new Wakeup();
    const started = Date.now();
    setTimeout(() => q.push('SIGUSR1'), 20);
    expect(await q.wait(5000)).toEqual(['SIGUSR1']);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('a wake-up ends the wait with no signal (the sentinel is not a signal)', async () => {
    const q = new Wakeup();
    setTimeout(() => q.wake(), 20);
    expect(await q.wait(5000)).toEqual([]);
  });

  it('a wait with nothing happening times out empty', async () => {
    const q = new Wakeup();
    expect(await q.wait(20)).toEqual([]);
  });

  it('coalesces a signal already pending, but counts TTIN/TTOU', () => {
    const q = new Wakeup();
    expect(q.push('SIGHUP')).toBe(true);
    expect(q.push('SIGHUP')).toBe(false);
    q.push('SIGTTIN');
    q.push('SIGTTIN');
    expect(q.drain()).toEqual(['SIGHUP', 'SIGTTIN', 'SIGTTIN']);
  });

  it('is bounded, but never drops a stop signal', () => {
    const q = new Wakeup(3);
    for (let i = 0; i < 5; i++) q.push('SIGTTIN');
    expect(q.size).toBe(3);
    expect(q.push('SIGTERM')).toBe(true);
    expect(q.drain()).toEqual(['SIGTTIN', 'SIGTTIN', 'SIGTTIN', 'SIGTERM']);
  });

  it('take() picks a stop signal out of the queue (quick shutdown during a graceful one)', () => {
    const q = new Wakeup();
    q.push('SIGUSR1');
    q.push('SIGQUIT');
    expect(q.take(['SIGINT', 'SIGQUIT'])).toBe('SIGQUIT');
    expect(q.drain()).toEqual(['SIGUSR1']);
  });
});
