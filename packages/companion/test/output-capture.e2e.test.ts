import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type ArbLogLine, parseArbLogLine } from '@arb/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_OUTPUT_LINE_BYTES } from '../src/index.js';
import { cleanup, nodeCmd, spawnManager, tmp, waitFor } from './helpers.js';

afterEach(() => cleanup());

const FAST_LINES = 100_000;

/** Every line the manager wrote, checked strictly (one key once, proc and pid on each). */
function logLines(out: string): ArbLogLine[] {
  return out
    .split('\n')
    .filter(Boolean)
    .map((l) => parseArbLogLine(l));
}

describe("the manager captures its companions' output as log lines", () => {
  it('line by line, each naming the companion, its pid and stream: fast, long, binary, unterminated', async () => {
    const dir = tmp();
    const once = { startSecs: 0, autorestart: 'never' };
    const config = {
      workers: [
        { name: 'fast', ...once, command: ['seq', '1', String(FAST_LINES)] },
        {
          name: 'long',
          ...once,
          command: nodeCmd(
            "process.stdout.write('é'.repeat(20000)); process.stderr.write('unterminated')",
          ),
        },
        {
          name: 'binary',
          ...once,
          command: nodeCmd('process.stdout.write(Buffer.from([0x41, 0xff, 0xfe, 0x0a]))'),
        },
        {
          name: 'tofile',
          ...once,
          stdout: join(dir, 'tofile.out'),
          command: nodeCmd("console.log('into the file'); console.error('into the log')"),
        },
      ],
    };
    const m = spawnManager(['--log-format', 'json'], {
      ARB_COMPANION_CONFIG_JSON: JSON.stringify(config),
    });
    await m.ready;
    // cheap checks while waiting (the log is parsed strictly once, at the end)
    const has = (text: string) => m.logs().includes(text);
    await waitFor(
      () =>
        has(`"companion":"fast","stream":"stdout","msg":"${FAST_LINES}"`) &&
        has('"msg":"unterminated"') &&
        has('"companion":"binary"') &&
        has('"msg":"into the log"'),
      20_000,
      'all the output',
    );
    m.child.kill('SIGTERM');
    expect((await m.exited).code).toBe(0);
    const all = logLines(m.logs());
    const of = (name: string, stream = 'stdout') =>
      all.filter((l) => l.proc === 'companion' && l.companion === name && l.stream === stream);

    // nothing lost, nothing repeated, in order
    const fast = of('fast');
    expect(fast.map((l) => l.msg)).toEqual(
      Array.from({ length: FAST_LINES }, (_, i) => String(i + 1)),
    );
    const fastPid = fast[0]!.pid;
    expect(fastPid).not.toBe(m.pid);
    expect(fast.every((l) => l.pid === fastPid && l.level === 30)).toBe(true);
    const started = all.find(
      (l) => l.proc === 'manager' && l.msg === `companion fast started (pid ${fastPid})`,
    );
    expect(started?.pid).toBe(m.pid);

    // 40000 bytes without newline: bounded pieces, whole characters, the last one at exit
    const long = of('long');
    expect(long.map((l) => Buffer.byteLength(l.msg))).toEqual([
      MAX_OUTPUT_LINE_BYTES,
      MAX_OUTPUT_LINE_BYTES,
      40_000 - 2 * MAX_OUTPUT_LINE_BYTES,
    ]);
    expect(long.map((l) => l.continues)).toEqual([true, true, undefined]);
    expect(long.map((l) => l.msg).join('')).toBe('é'.repeat(20000));
    expect(of('long', 'stderr').map((l) => l.msg)).toEqual(['unterminated']);

    const [binary] = of('binary');
    expect(binary).toMatchObject({
      msg: 'A\ufffd\ufffd',
      base64: Buffer.from([0x41, 0xff, 0xfe]).toString('base64'),
    });

    // a companion with stdout in a file keeps writing there; its stderr comes to the log
    expect(readFileSync(join(dir, 'tofile.out'), 'utf8')).toBe('into the file\n');
    expect(of('tofile', 'stderr').map((l) => l.msg)).toEqual(['into the log']);
    expect(of('tofile')).toEqual([]);
    // the manager's own lines say so too
    expect(all.filter((l) => l.proc === 'manager').every((l) => l.pid === m.pid)).toBe(true);
  });

  it('a reader that stalls slows a fast companion down, it loses nothing', async () => {
    const config = {
      workers: [
        {
          name: 'fast',
          startSecs: 0,
          autorestart: 'never',
          command: ['seq', '1', String(FAST_LINES)],
        },
      ],
    };
    const m = spawnManager(['--log-format', 'json'], {
      ARB_COMPANION_CONFIG_JSON: JSON.stringify(config),
    });
    await m.ready;
    // stop reading the manager's stderr while the companion floods it: the pipes fill up
    m.child.stderr!.pause();
    await new Promise((r) => setTimeout(r, 500));
    m.child.stderr!.resume();
    await waitFor(() => m.logs().includes(`"msg":"${FAST_LINES}"`), 20_000, `line ${FAST_LINES}`);
    m.child.kill('SIGTERM');
    expect((await m.exited).code).toBe(0);
    expect(m.logs()).not.toContain('cannot write the log');
    const fast = logLines(m.logs()).filter((l) => l.proc === 'companion');
    expect(fast.map((l) => l.msg)).toEqual(
      Array.from({ length: FAST_LINES }, (_, i) => String(i + 1)),
    );
  });
});
