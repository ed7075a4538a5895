import fs from 'node:fs';

/** What Linux's /proc says about a socket descriptor of this process. */
export type SocketInfo =
  | { kind: 'unix'; path: string; listening: boolean }
  | { kind: 'tcp'; host: string; port: number; family: 4 | 6 }
  | { kind: 'unknown' };

/**
 * Describes a socket descriptor without wrapping it in a handle (which would take ownership
 * of the fd). Reads the socket inode from /proc/self/fd and looks it up in /proc/net. Only
 * listening TCP sockets appear there; others come back `unknown`, as on non-Linux systems.
 */
export function describeSocket(fd: number): SocketInfo {
  let inode: string;
  try {
    const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/self/fd/${fd}`));
    if (!m) return { kind: 'unknown' };
    inode = m[1]!;
  } catch {
    return { kind: 'unknown' };
  }
  return findUnix(inode) ?? findTcp(inode, 4) ?? findTcp(inode, 6) ?? { kind: 'unknown' };
}

function rows(file: string): string[][] {
  try {
    return fs
      .readFileSync(file, 'utf8')
      .split('\n')
      .slice(1)
      .map((line) => line.trim().split(/\s+/));
  } catch {
    return [];
  }
}

// Num RefCount Protocol Flags Type St Inode [Path]
function findUnix(inode: string): SocketInfo | undefined {
  const row = rows('/proc/net/unix').find((r) => r[6] === inode);
  if (!row) return undefined;
  // Flags 00010000 is __SO_ACCEPTCON: listen() was called on it.
  const listening = (Number.parseInt(row[3] ?? '0', 16) & 0x10000) !== 0;
  return { kind: 'unix', path: row.slice(7).join(' '), listening };
}

// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...
function findTcp(inode: string, family: 4 | 6): SocketInfo | undefined {
  const row = rows(family === 4 ? '/proc/net/tcp' : '/proc/net/tcp6').find((r) => r[9] === inode);
  if (!row) return undefined;
  const [hexHost = '', hexPort = '0'] = row[1]!.split(':');
  return {
    kind: 'tcp',
    host: decodeHost(hexHost, family),
    port: Number.parseInt(hexPort, 16),
    family,
  };
}

// /proc prints each 32-bit word of the address in host (little-endian) byte order.
function decodeHost(hex: string, family: 4 | 6): string {
  const bytes: number[] = [];
  for (let w = 0; w < hex.length; w += 8) {
    const word = hex.slice(w, w + 8);
    for (let b = 6; b >= 0; b -= 2) bytes.push(Number.parseInt(word.slice(b, b + 2), 16));
  }
  if (family === 4) return bytes.join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  return compressV6(groups);
}

function compressV6(groups: string[]): string {
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < groups.length; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < groups.length && groups[j] === '0') j++;
    if (j - i > bestLen && j - i > 1) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best === -1) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}
