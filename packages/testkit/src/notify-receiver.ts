import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';

/**
 * A real AF_UNIX datagram receiver standing in for systemd's NOTIFY_SOCKET. Node has no
 * datagram unix sockets, so it is a tiny python3 process (on every machine) that prints
 * each datagram it receives as one JSON string per line.
 */
const SCRIPT = `
import json, socket, sys
a = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind('\\0' + a[1:] if a.startswith('@') else a)
print(json.dumps('LISTENING'), flush=True)
while True:
    data = s.recv(65536)
    print(json.dumps(data.decode('utf-8', 'replace')), flush=True)
`;

export class NotifyReceiver {
  readonly messages: string[] = [];
  private readonly child: ChildProcess;
  private listening: Promise<void>;

  /** `address` is a path, or `@name` for the abstract namespace (default: a fresh abstract name). */
  constructor(
    readonly address = `@arb-notify-test-${process.pid}-${randomBytes(4).toString('hex')}`,
  ) {
    this.child = spawn('python3', ['-u', '-c', SCRIPT, address], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let buf = '';
    let onListening!: () => void;
    this.listening = new Promise((r) => {
      onListening = r;
    });
    this.child.stdout!.setEncoding('utf8');
    this.child.stdout!.on('data', (d: string) => {
      buf += d;
      for (let i = buf.indexOf('\n'); i !== -1; i = buf.indexOf('\n')) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        const m = JSON.parse(line) as string;
        if (m === 'LISTENING') onListening();
        else this.messages.push(m);
      }
    });
  }

  ready(): Promise<void> {
    return Promise.race([
      this.listening,
      new Promise<void>((_, reject) =>
        setTimeout(() => reject(new Error('notify receiver did not start')), 10_000).unref(),
      ),
    ]);
  }

  /** The messages without `WATCHDOG=1` pings. */
  states(): string[] {
    return this.messages.filter((m) => m !== 'WATCHDOG=1');
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const gone = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGKILL');
    await gone;
  }
}
