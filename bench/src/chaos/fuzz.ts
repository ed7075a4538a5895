// Control socket fuzzing: garbage, broken and hostile JSON, huge lines, slow writers and
// connection floods on the companion manager's socket and the master's ctl socket.
// Nothing may crash; both must still answer `{"cmd":"status"}` afterwards.
import { existsSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { alive, rmDir, sleep } from '../util.js';
import { arbWithCompanions, type ChaosResult, ctlRequest, managerPid } from './common.js';

/** small deterministic PRNG (mulberry32) so a failing case can be replayed */
function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Case = { label: string; run: (path: string) => Promise<void> };

function send(
  path: string,
  chunks: (string | Buffer)[],
  opts: { delayMs?: number; holdMs?: number; end?: boolean } = {},
) {
  return new Promise<void>((res) => {
    const s = net.connect(path);
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      s.destroy();
      res();
    };
    s.on('error', finish);
    s.on('data', () => {});
    s.on('close', finish);
    s.on('connect', async () => {
      for (const c of chunks) {
        if (s.destroyed) break;
        s.write(c);
        if (opts.delayMs) await sleep(opts.delayMs);
      }
      if (opts.end !== false) s.end();
      setTimeout(finish, opts.holdMs ?? 300);
    });
  });
}

export async function statusOk(path: string, timeoutMs = 3000): Promise<boolean> {
  return (await ctlRequest(path, { cmd: 'status' }, timeoutMs))?.ok === true;
}

function cases(seed: number): Case[] {
  const r = rng(seed);
  const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(r() * 256)));
  const out: Case[] = [];
  for (let i = 0; i < 40; i++) {
    const b = bytes(1 + Math.floor(r() * 4096));
    out.push({ label: `random bytes ${b.length}`, run: (p) => send(p, [b]) });
  }
  for (let i = 0; i < 40; i++) {
    const b = Buffer.concat([bytes(1 + Math.floor(r() * 512)), Buffer.from('\n')]);
    out.push({ label: `random line ${b.length}`, run: (p) => send(p, [b]) });
  }
  const lines = [
    '{',
    '}',
    '[]',
    'null',
    '1',
    '"status"',
    '{"cmd":',
    '{"cmd":1}',
    '{"cmd":null}',
    '{"cmd":[]}',
    '{"cmd":{}}',
    '{"cmd":"nope"}',
    '{"cmd":"status","name":{}}',
    '{"cmd":"status","name":123}',
    '{"cmd":"status","name":"../../../etc/passwd"}',
    '{"cmd":"start","name":null}',
    '{"cmd":"start","name":["a"]}',
    '{"cmd":"stop","name":{"toString":1}}',
    '{"cmd":"signal","name":"nope","signal":"SIGNOPE"}',
    '{"cmd":"signal","name":"sleeper","signal":12345}',
    '{"cmd":"workers","action":"add","count":-5}',
    '{"cmd":"workers","action":"add","count":1e9}',
    '{"cmd":"workers","action":"remove","count":"x"}',
    '{"cmd":"workers","action":"explode"}',
    '{"cmd":"upgrade","timeout":-1}',
    '{"cmd":"shutdown","quick":"maybe"}',
    '{"__proto__":{"ok":false,"cmd":"shutdown"},"cmd":"status"}',
    '{"constructor":{"prototype":{"polluted":1}},"cmd":"status"}',
    '{"cmd":"status","id":{"a":1}}',
    '{"cmd":"status","id":"x"}{"cmd":"status"}',
    `{"cmd":"status","pad":"${'x'.repeat(60000)}"}`,
    '\u0000\u0000\u0000\n',
    '\ufeff{"cmd":"status"}',
    '{"cmd":"status"}\r',
  ];
  for (const l of lines)
    out.push({ label: `line ${l.slice(0, 50)}`, run: (p) => send(p, [`${l}\n`]) });
  out.push({ label: 'nested [ x 200000', run: (p) => send(p, [`${'['.repeat(200000)}\n`]) });
  out.push({ label: '1 MiB without newline', run: (p) => send(p, [Buffer.alloc(1 << 20, 97)]) });
  out.push({
    label: '8 MiB line',
    run: (p) => send(p, [Buffer.alloc(8 << 20, 97), '\n'], { holdMs: 1000 }),
  });
  out.push({
    label: '1000 pipelined status requests',
    run: (p) => send(p, ['{"cmd":"status"}\n'.repeat(1000)], { holdMs: 1000 }),
  });
  out.push({
    label: 'half a request, then close',
    run: (p) => send(p, ['{"cmd":"sta']),
  });
  out.push({
    label: 'request, then destroy without reading',
    run: (p) =>
      new Promise<void>((res) => {
        const s = net.connect(p, () => {
          s.write('{"cmd":"status"}\n');
          s.destroy();
          res();
        });
        s.on('error', () => res());
      }),
  });
  out.push({
    label: 'slow writer: 1 byte / 5 ms for 1 s',
    run: (p) => send(p, '{"cmd":"status","slow":"'.padEnd(200, 'y').split(''), { delayMs: 5 }),
  });
  out.push({
    label: '300 connections at once, held 1 s, dropped',
    run: (p) =>
      new Promise<void>((res) => {
        const socks: net.Socket[] = [];
        for (let i = 0; i < 300; i++) {
          const s = net.connect(p);
          s.on('error', () => {});
          socks.push(s);
        }
        setTimeout(() => {
          for (const s of socks) s.destroy();
          res();
        }, 1000);
      }),
  });
  return out;
}

export async function fuzzSockets(o: { seed?: number } = {}): Promise<ChaosResult> {
  const seed = o.seed ?? 42;
  const x = await arbWithCompanions([
    { name: 'sleeper', command: [process.execPath, '-e', 'setInterval(() => {}, 1000)'] },
  ]);
  await sleep(1500);
  const ctl = join(x.dir, 'arb.ctl');
  const sockets: Array<{ name: string; path: string }> = [
    { name: 'companion socket', path: x.socket },
  ];
  if (existsSync(ctl)) sockets.push({ name: 'ctl socket', path: ctl });
  const mgr0 = managerPid(x.arb.pid);
  const found: string[] = [];
  let total = 0;
  for (const s of sockets) {
    const list = cases(seed);
    for (const c of list) {
      await c.run(s.path);
      total++;
      if (!alive(x.arb.pid)) {
        found.push(`${s.name}: master died after "${c.label}"`);
        break;
      }
      if (mgr0 && !alive(mgr0)) {
        found.push(`${s.name}: manager died after "${c.label}"`);
        break;
      }
    }
  }
  await sleep(500);
  const answers: string[] = [];
  for (const s of sockets) {
    const ok = await statusOk(s.path);
    answers.push(`${s.name} ${ok ? 'answers' : 'DOES NOT answer'}`);
    if (!ok) found.push(`${s.name} does not answer status after fuzzing`);
  }
  const masterAlive = alive(x.arb.pid) && !x.arb.exit;
  const mgrSame = mgr0 !== undefined && managerPid(x.arb.pid) === mgr0;
  if (!mgrSame) found.push('the manager was replaced (it crashed)');
  const leaked = await x.arb.stop();
  rmDir(x.dir);
  return {
    name: `control socket fuzzing (${sockets.map((s) => s.name).join(' + ')}; seed ${seed})`,
    tried: `${total} cases: random bytes, random lines, broken/hostile JSON, 8 MiB line, 200000-deep nesting, pipelining, half requests, resets, slow writer, 300-connection flood`,
    lost: `${found.length ? found.join('; ') : 'no crash'}; ${answers.join(', ')}; master ${masterAlive ? 'alive' : 'DEAD'}; leaked after stop: ${leaked.length ? leaked.join(' ') : 'none'}`,
    pass: found.length === 0 && masterAlive && leaked.length === 0,
    details: { found, sockets: sockets.map((s) => s.name) },
  };
}
