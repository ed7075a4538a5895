import fs from 'node:fs';

/** What `/proc` tells of one process at one moment. */
export interface ProcStats {
  pid: number;
  /** Resident set size, bytes (`/proc/<pid>/statm` resident pages × page size). */
  rssBytes: number;
  /** CPU time used so far, user + system, seconds (`/proc/<pid>/stat` utime + stime). */
  cpuSeconds: number;
  /** `/proc/<pid>/stat` state letter: `R`, `S`, `D`, `Z`... */
  state: string;
}

// The kernel's USER_HZ is 100 on every Linux ABI Node runs on; sysconf is not reachable here.
const CLOCK_TICKS = 100;
const PAGE_SIZE = 4096;

/**
 * One process's RSS and CPU time from `/proc`, or undefined when it is gone, unreadable,
 * or this is not Linux. Cheap (two small reads): callers sample on their own cadence.
 */
export function readProcStats(pid: number, procRoot = '/proc'): ProcStats | undefined {
  try {
    const stat = fs.readFileSync(`${procRoot}/${pid}/stat`, 'utf8');
    const statm = fs.readFileSync(`${procRoot}/${pid}/statm`, 'utf8');
    // the command name may hold spaces and parentheses: fields count from the last ')'
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    const resident = Number(statm.split(' ')[1]);
    if (!Number.isFinite(utime) || !Number.isFinite(stime) || !Number.isFinite(resident)) {
      return undefined;
    }
    return {
      pid,
      rssBytes: resident * PAGE_SIZE,
      cpuSeconds: (utime + stime) / CLOCK_TICKS,
      state: fields[0] ?? '?',
    };
  } catch {
    return undefined;
  }
}

/**
 * CPU use between two samples of the same process, percent of one core (100 = one core
 * busy the whole time); `elapsedSeconds` from a monotonic clock.
 */
export function cpuPercent(before: ProcStats, after: ProcStats, elapsedSeconds: number): number {
  if (elapsedSeconds <= 0) return 0;
  return Math.max(0, ((after.cpuSeconds - before.cpuSeconds) / elapsedSeconds) * 100);
}
