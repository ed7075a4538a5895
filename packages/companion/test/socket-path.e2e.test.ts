// A control socket path taken by a regular file or a directory: refused before anything
// is spawned, the path named, the file left alone.
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SocketPathError } from '@arb/sock';
import { afterEach, describe, expect, it } from 'vitest';
import { Manager } from '../src/index.js';
import { cleanup, nodeCmd, spawnManager, tmp } from './helpers.js';

afterEach(() => cleanup());

describe('a companion socket path that is not a socket', () => {
  for (const kind of ['a regular file', 'a directory'] as const) {
    it(`is refused at start when it is ${kind}, spawning nothing (API and process)`, async () => {
      const dir = tmp();
      const sock = join(dir, 'c.sock');
      if (kind === 'a directory') mkdirSync(sock);
      else writeFileSync(sock, 'precious');
      const marker = join(dir, 'started');
      const companions = {
        socket: sock,
        workers: [
          {
            name: 'x',
            command: nodeCmd(`require('fs').writeFileSync(${JSON.stringify(marker)}, 'x')`),
          },
        ],
      };

      const m = new Manager({ companions, guard: false });
      const err = await m.start().then(
        () => null,
        (e: unknown) => e,
      );
      await m.stop({ quick: true });
      expect(err).toBeInstanceOf(SocketPathError);
      expect((err as SocketPathError).path).toBe(sock);
      expect((err as Error).message).toContain(sock);

      const p = spawnManager([], { ARB_COMPANION_CONFIG_JSON: JSON.stringify(companions) }, dir);
      expect((await p.exited).code).toBe(2);
      const errors = p
        .logs()
        .split('\n')
        .filter((l) => l.includes('"level":50'));
      expect(errors).toHaveLength(1);
      expect(errors[0]).toContain(sock);

      expect(existsSync(marker)).toBe(false);
      if (kind === 'a directory') expect(statSync(sock).isDirectory()).toBe(true);
      else expect(readFileSync(sock, 'utf8')).toBe('precious');
    });
  }
});
