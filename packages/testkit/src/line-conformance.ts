import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';

/**
 * What every line socket of arb does (the master's ctl socket, the companion manager's
 * socket, @arb/sock's `LineServer` alone), as cases a suite registers with `it`:
 *
 *   for (const c of lineSocketCases(subject)) it(c.name, c.run);
 *
 * The subject is started once with {@link CONFORMANCE_LIMITS} (small, so that the limits are
 * reached quickly) and stopped by the last case, which checks how a server closes.
 */
export interface LineSocketSubject {
  /** The socket path, once started. */
  path(): string;
  /** A request line (without newline) the server answers with `"ok": true`. */
  okRequest: string;
  /** Stops the server (the last case); resolves once it stopped. */
  stop(): Promise<void>;
}

/** The limits the subject must be started with. */
export const CONFORMANCE_LIMITS = {
  maxLineBytes: 4096,
  maxConnections: 8,
  maxQueuedLines: 16,
  idleTimeoutMs: 1500,
  readTimeoutMs: 800,
  lingerMs: 1000,
} as const;

export interface ConformanceCase {
  name: string;
  run(): Promise<void>;
}

type Reply = Record<string, unknown>;

/** A client connection that records reply lines and how the server left. */
class Peer {
  readonly sock: net.Socket;
  readonly replies: Reply[] = [];
  closed = false;
  /** The server ended its side (FIN) rather than resetting. */
  ended = false;
  private buf = '';
  private readonly connected: Promise<void>;
  private readonly gone: Promise<void>;

  constructor(path: string, read = true) {
    this.sock = net.connect(path);
    this.sock.on('error', () => {});
    this.connected = new Promise((resolve, reject) => {
      this.sock.once('connect', resolve);
      this.sock.once('error', reject);
    });
    this.gone = new Promise((resolve) => this.sock.once('close', () => resolve()));
    this.sock.on('close', () => {
      this.closed = true;
    });
    this.sock.on('end', () => {
      this.ended = true;
    });
    this.sock.on('data', (d: Buffer) => {
      this.buf += d.toString('utf8');
      for (let nl = this.buf.indexOf('\n'); nl !== -1; nl = this.buf.indexOf('\n')) {
        this.replies.push(JSON.parse(this.buf.slice(0, nl)) as Reply);
        this.buf = this.buf.slice(nl + 1);
      }
    });
    if (!read) this.sock.pause();
  }

  ready(): Promise<void> {
    return this.connected;
  }

  write(data: string | Buffer): void {
    this.sock.write(data);
  }

  async replyCount(n: number, timeoutMs = 10_000): Promise<Reply[]> {
    await until(() => this.replies.length >= n || this.closed, timeoutMs, `${n} replies`);
    assert.ok(this.replies.length >= n, `expected ${n} replies, got ${this.replies.length}`);
    return this.replies;
  }

  /** Resolves with the ms until the server closed the connection; fails after `timeoutMs`. */
  async closedWithin(timeoutMs: number): Promise<number> {
    const t0 = Date.now();
    const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), timeoutMs).unref());
    const how = await Promise.race([this.gone.then(() => 'closed' as const), timer]);
    assert.equal(how, 'closed', `the server did not close the connection within ${timeoutMs} ms`);
    return Date.now() - t0;
  }

  destroy(): void {
    this.sock.destroy();
  }
}

async function until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The cases, in order; the last one stops the subject. */
export function lineSocketCases(subject: LineSocketSubject): ConformanceCase[] {
  const L = CONFORMANCE_LIMITS;
  const ok = `${subject.okRequest}\n`;
  const peers: Peer[] = [];
  const peer = (read = true) => {
    const p = new Peer(subject.path(), read);
    peers.push(p);
    return p;
  };
  const cleanup = () => {
    for (const p of peers.splice(0)) p.destroy();
  };
  const wrap = (name: string, run: () => Promise<void>): ConformanceCase => ({
    name,
    run: async () => {
      try {
        await run();
      } finally {
        cleanup();
      }
    },
  });

  return [
    wrap('the socket file is mode 0600', async () => {
      const st = fs.lstatSync(subject.path());
      assert.ok(st.isSocket());
      assert.equal(st.mode & 0o777, 0o600);
    }),

    wrap(
      'answers in order, skips blank lines, ignores a trailing fragment, then closes',
      async () => {
        const p = peer();
        await p.ready();
        p.write(`${ok}\n   \n${ok}\r\n{"cmd":`);
        p.sock.end();
        await p.closedWithin(5000);
        assert.equal(p.replies.length, 2);
        for (const r of p.replies) assert.equal(r.ok, true);
      },
    ),

    wrap('answers malformed JSON with an error and keeps the connection', async () => {
      const p = peer();
      await p.ready();
      p.write('not json\n[1]\n');
      const [a, b] = await p.replyCount(2);
      assert.deepEqual(a, { ok: false, error: 'invalid JSON' });
      assert.deepEqual(b, { ok: false, error: 'request must be a JSON object' });
      p.write(ok);
      assert.equal((await p.replyCount(3))[2]!.ok, true);
      assert.equal(p.closed, false);
    }),

    wrap('answers an oversize line with "line too long" and closes', async () => {
      const p = peer();
      await p.ready();
      p.write(ok);
      p.write(Buffer.alloc(L.maxLineBytes + 10, 0x61));
      await p.closedWithin(5000);
      assert.equal(p.replies.length, 2);
      assert.equal(p.replies[0]!.ok, true); // what was asked before is answered first
      assert.deepEqual(p.replies[1], { ok: false, error: 'line too long' });
    }),

    wrap('closes an idle connection; blank lines do not keep it open', async () => {
      const p = peer();
      await p.ready();
      const blank = setInterval(() => p.write('\n'), L.idleTimeoutMs / 6);
      try {
        const after = await p.closedWithin(L.idleTimeoutMs * 4);
        assert.ok(after >= L.idleTimeoutMs * 0.8, `closed after ${after} ms`);
      } finally {
        clearInterval(blank);
      }
      assert.equal(p.replies.length, 0);
    }),

    wrap(
      'answers a line that trickles in slower than the read timeout with "read timeout"',
      async () => {
        const p = peer();
        await p.ready();
        p.write(`${ok}{"cmd":`);
        const drip = setInterval(() => p.write(' '), L.readTimeoutMs / 8);
        try {
          await p.closedWithin(L.readTimeoutMs * 4);
        } finally {
          clearInterval(drip);
        }
        assert.equal(p.replies[0]!.ok, true);
        assert.deepEqual(p.replies[1], { ok: false, error: 'read timeout' });
      },
    ),

    wrap('stops reading a client that pipelines without reading, then answers it all', async () => {
      const first = peer();
      await first.ready();
      first.write(ok);
      const replyBytes = JSON.stringify((await first.replyCount(1))[0]).length + 1;
      // replies worth 4 MiB, far more than socket buffers hold, so the server has to wait for
      // the client; requests padded to 4 KiB (JSON allows the spaces), so what the server may
      // read ahead (maxQueuedLines, a socket buffer) is a small part of what is written
      const count = Math.max(200, Math.ceil((4 * 1024 * 1024) / replyBytes));
      const line = `${subject.okRequest}${' '.repeat(L.maxLineBytes - subject.okRequest.length - 2)}\n`;
      const p = peer(false);
      await p.ready();
      for (let i = 0; i < count; i++) p.write(line);
      // wait until the server stopped taking what we write
      let last = -1;
      for (let stable = 0; stable < 3; ) {
        await sleep(100);
        const now = p.sock.writableLength;
        stable = now === last ? stable + 1 : 0;
        last = now;
      }
      assert.ok(
        p.sock.writableLength > count * line.length * 0.5,
        `the server read on: ${p.sock.writableLength} of ${count * line.length} bytes left unread`,
      );
      assert.equal(p.closed, false);
      p.sock.resume();
      const replies = await p.replyCount(count, 60_000);
      assert.equal(replies.length, count);
      assert.ok(replies.every((r) => r.ok === true));
    }),

    wrap('serves maxConnections clients at once and refuses one more', async () => {
      const open: Peer[] = [];
      for (let i = 0; i < L.maxConnections; i++) open.push(await served(subject.path(), ok, peers));
      const extra = peer();
      await extra.closedWithin(5000);
      assert.deepEqual(extra.replies, [{ ok: false, error: 'too many connections' }]);
      open[0]!.destroy();
      const again = await served(subject.path(), ok, peers);
      assert.equal(again.replies[0]!.ok, true);
      for (const p of open.slice(1)) assert.equal(p.closed, false);
    }),

    wrap('survives clients that leave before their reply', async () => {
      for (let i = 0; i < 20; i++) {
        const p = peer();
        p.write(ok.repeat(5));
        p.destroy();
      }
      await sleep(100);
      const p = peer();
      await p.ready();
      p.write(ok);
      assert.equal((await p.replyCount(1))[0]!.ok, true);
    }),

    wrap('on close: ends open connections, removes its file', async () => {
      const p = peer();
      await p.ready();
      p.write(ok);
      await p.replyCount(1);
      await subject.stop();
      await p.closedWithin(L.lingerMs + 2000);
      assert.equal(p.ended, true, 'the connection was reset, not ended');
      assert.equal(fs.existsSync(subject.path()), false);
    }),
  ];
}

/**
 * A connection that was answered: the server frees the slot of a client that left a moment
 * after the client, so a refusal (`too many connections`) is retried for a while.
 */
async function served(path: string, ok: string, peers: Peer[]): Promise<Peer> {
  const deadline = Date.now() + 3000;
  for (;;) {
    const p = new Peer(path);
    peers.push(p);
    await p.ready();
    p.write(ok);
    const [r] = await p.replyCount(1);
    if (r!.ok === true || Date.now() > deadline) return p;
    p.destroy();
    await sleep(50);
  }
}
