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

/**
 * The pid of a process listening on TCP `port` at `host` (or on a wildcard address that
 * covers it), found through /proc: the socket's inode in /proc/net/tcp{,6}, then the process
 * holding that inode among /proc/<pid>/fd. Undefined when /proc does not tell: not Linux,
 * another network namespace, or the holder's descriptors are not readable by this user.
 * Reads every process's descriptor table: meant for an error message, not a hot path.
 */
export function tcpListenerPid(host: string, port: number): number | undefined {
  const inodes = new Set<string>();
  for (const family of [4, 6] as const) {
    for (const row of rows(family === 4 ? '/proc/net/tcp' : '/proc/net/tcp6')) {
      // st 0A is TCP_LISTEN
      if (row[3] !== '0A' || !row[1] || !row[9] || row[9] === '0') continue;
      const [hexHost = '', hexPort = ''] = row[1].split(':');
      if (Number.parseInt(hexPort, 16) !== port) continue;
      if (covers(decodeHost(hexHost, family), host)) inodes.add(row[9]);
    }
  }
  if (inodes.size === 0) return undefined;
  let pids: string[];
  try {
    pids = fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return undefined;
  }
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = fs.readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue; // gone, or another user's
    }
    for (const fd of fds) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m && inodes.has(m[1]!)) return Number(pid);
      } catch {
        // closed meanwhile
      }
    }
  }
  return undefined;
}

const WILDCARDS = new Set(['0.0.0.0', '::']);

/** Whether a socket bound to `bound` stands in the way of binding `wanted` (same port). */
function covers(bound: string, wanted: string): boolean {
  if (bound === wanted || WILDCARDS.has(bound) || WILDCARDS.has(wanted)) return true;
  return bound === `::ffff:${wanted}` || wanted === `::ffff:${bound}`;
}
