/**
 * `JSON.parse` that also rejects what it lets through: a key repeated in one object
 * (strict log ingesters refuse such lines; `JSON.parse` keeps the last value silently).
 * Throws a SyntaxError naming the key and where.
 */
export function parseStrictJson(text: string): unknown {
  let i = 0;
  const fail = (why: string): never => {
    throw new SyntaxError(
      `${why} at ${i} in ${text.length > 200 ? `${text.slice(0, 200)}...` : text}`,
    );
  };
  const ws = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++;
  };
  const str = (): string => {
    const start = i;
    i++; // opening quote
    while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    if (i >= text.length) fail('unterminated string');
    i++;
    return JSON.parse(text.slice(start, i)) as string;
  };
  const value = (): unknown => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const out: Record<string, unknown> = {};
      const seen = new Set<string>();
      ws();
      if (text[i] === '}') {
        i++;
        return out;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail('expected a key');
        const key = str();
        if (seen.has(key)) fail(`duplicate key ${JSON.stringify(key)}`);
        seen.add(key);
        ws();
        if (text[i] !== ':') fail('expected ":"');
        i++;
        out[key] = value();
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return out;
        }
        fail('expected "," or "}"');
      }
    }
    if (c === '[') {
      i++;
      const out: unknown[] = [];
      ws();
      if (text[i] === ']') {
        i++;
        return out;
      }
      for (;;) {
        out.push(value());
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return out;
        }
        fail('expected "," or "]"');
      }
    }
    if (c === '"') return str();
    const m = /^(?:-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)/.exec(text.slice(i, i + 400));
    if (!m) return fail('unexpected character');
    i += m[0].length;
    return JSON.parse(m[0]);
  };
  const out = value();
  ws();
  if (i !== text.length) fail('trailing characters');
  return out;
}

/** The fields every arb log line carries. */
export interface ArbLogLine {
  level: number;
  time: number;
  proc: 'master' | 'worker' | 'manager' | 'companion';
  pid: number;
  msg: string;
  [field: string]: unknown;
}

const PROCS = new Set(['master', 'worker', 'manager', 'companion']);

/**
 * One arb JSON log line, checked: no duplicate key, `level`/`time`/`msg`, `proc` one of
 * master, worker, manager, companion, a numeric `pid`; a companion's line also names the
 * companion and its `stream`. Throws naming the line otherwise.
 */
export function parseArbLogLine(line: string): ArbLogLine {
  const e = parseStrictJson(line) as Record<string, unknown>;
  const bad = (why: string): never => {
    throw new Error(`${why}: ${line}`);
  };
  if (typeof e !== 'object' || e === null || Array.isArray(e)) bad('not an object');
  if (typeof e.level !== 'number') bad('no numeric level');
  if (typeof e.time !== 'number') bad('no numeric time');
  if (typeof e.msg !== 'string') bad('no msg');
  if (typeof e.proc !== 'string' || !PROCS.has(e.proc))
    bad('no proc (master|worker|manager|companion)');
  if (!Number.isInteger(e.pid) || (e.pid as number) <= 0) bad('no pid');
  if (e.proc === 'companion') {
    if (typeof e.companion !== 'string' || e.companion === '')
      bad('a companion line without companion');
    if (e.stream !== 'stdout' && e.stream !== 'stderr') bad('a companion line without stream');
  }
  return e as ArbLogLine;
}
