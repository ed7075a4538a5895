// When each sd_notify datagram reached the test. The NotifyReceiver keeps the messages only;
// readiness and watchdog checks need their times, and checks of "nothing more came" a barrier.
import { spawn } from 'node:child_process';
import { waitFor } from '@arb/testkit';

export interface Arrival {
  message: string;
  /** Date.now() in the test when it was seen (at most POLL_MS after it was received). */
  at: number;
}

const POLL_MS = 5;

export class NotifyArrivals {
  readonly arrivals: Arrival[] = [];
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly receiver: { readonly messages: readonly string[] }) {
    this.timer = setInterval(() => this.poll(), POLL_MS);
  }

  /** The first arrival of a message that starts with `prefix`. */
  first(prefix: string): Arrival | undefined {
    this.poll();
    return this.arrivals.find((a) => a.message.startsWith(prefix));
  }

  /** Every arrival of exactly `message`. */
  all(message: string): Arrival[] {
    this.poll();
    return this.arrivals.filter((a) => a.message === message);
  }

  stop(): void {
    clearInterval(this.timer);
    this.poll();
  }

  private poll(): void {
    const now = Date.now();
    const { messages } = this.receiver;
    for (let i = this.arrivals.length; i < messages.length; i++) {
      this.arrivals.push({ message: messages[i]!, at: now });
    }
  }
}

const BARRIER = 'TEST_BARRIER=';

/**
 * Sends a marker datagram to the receiver from another process and waits until it is in:
 * the socket queues datagrams in the order they were sent, so once the marker is in, every
 * message sent before it (by a process that has exited, say) is in too. Returns the
 * messages before the marker, without WATCHDOG=1 pings.
 */
export async function statesUpToNow(receiver: {
  readonly address: string;
  readonly messages: readonly string[];
}): Promise<string[]> {
  const marker = `${BARRIER}${process.pid}-${Date.now()}-${Math.random()}`;
  const send = spawn(
    'python3',
    [
      '-c',
      `import socket, sys
a = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(sys.argv[2].encode(), '\\0' + a[1:] if a.startswith('@') else a)`,
      receiver.address,
      marker,
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const code = await new Promise((resolve) => send.once('exit', resolve));
  if (code !== 0)
    throw new Error(`could not send the barrier to ${receiver.address}: exit ${code}`);
  const at = await waitFor(
    () => receiver.messages.indexOf(marker) + 1,
    10_000,
    `the barrier datagram at ${receiver.address}`,
  );
  return receiver.messages
    .slice(0, at - 1)
    .filter((m) => m !== 'WATCHDOG=1' && !m.startsWith(BARRIER));
}
