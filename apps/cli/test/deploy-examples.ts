import fs from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';

/** One instruction of a Dockerfile, continuation lines joined. */
export interface DockerInstruction {
  keyword: string;
  value: string;
  line: number;
}

/** The instructions of a Dockerfile (comments and parser directives dropped). */
export function dockerInstructions(text: string): DockerInstruction[] {
  const found: DockerInstruction[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const start = i;
    let line = lines[i]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    while (line.endsWith('\\') && i + 1 < lines.length) {
      i += 1;
      line = `${line.slice(0, -1).trimEnd()} ${lines[i]!.trim()}`;
    }
    const m = /^(\S+)\s+(.*)$/.exec(line);
    if (!m) throw new Error(`Dockerfile:${start + 1}: not an instruction: ${line}`);
    found.push({ keyword: m[1]!.toUpperCase(), value: m[2]!, line: start + 1 });
  }
  return found;
}

/** The one instruction named `keyword` (Docker uses the last; the example has one each). */
export function onlyInstruction(all: DockerInstruction[], keyword: string): DockerInstruction {
  const matching = all.filter((i) => i.keyword === keyword);
  if (matching.length !== 1) {
    throw new Error(`expected one ${keyword} in the Dockerfile, found ${matching.length}`);
  }
  return matching[0]!;
}

/**
 * The argv of an exec-form instruction (a JSON array of strings). The shell form would run
 * `/bin/sh -c`, which is then PID 1 and does not pass SIGTERM on to arb.
 */
export function execForm(value: string): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw new Error(`shell form, not exec form: ${value}`);
  }
  if (!Array.isArray(parsed) || !parsed.every((x) => typeof x === 'string')) {
    throw new Error(`exec form must be a JSON array of strings: ${value}`);
  }
  return parsed;
}

/** The HEALTHCHECK's command (after its --interval and other options). */
export function healthcheckCommand(value: string): string[] {
  const m = /^(?:--\S+\s+)*CMD\s+(.*)$/.exec(value);
  if (!m) throw new Error(`HEALTHCHECK without CMD: ${value}`);
  return execForm(m[1]!);
}

/** Every document of every YAML file in `dir`, parsed; a document with an error throws. */
export function yamlObjects(dir: string): { file: string; object: Record<string, unknown> }[] {
  const out: { file: string; object: Record<string, unknown> }[] = [];
  for (const file of fs.readdirSync(dir).sort()) {
    if (!/\.ya?ml$/.test(file)) continue;
    for (const doc of parseAllDocuments(fs.readFileSync(path.join(dir, file), 'utf8'))) {
      if (doc.errors.length > 0) {
        throw new Error(`${file}: ${doc.errors.map((e) => e.message).join('; ')}`);
      }
      const object = doc.toJS() as unknown;
      if (object === null || object === undefined) continue; // an empty document
      out.push({ file, object: object as Record<string, unknown> });
    }
  }
  return out;
}

/** The value of `flag` in an argv (`--flag value` or `--flag=value`; the last one wins). */
export function flagValue(args: readonly string[], ...names: string[]): string | undefined {
  let value: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    for (const name of names) {
      if (a === name) value = args[i + 1];
      else if (a.startsWith(`${name}=`)) value = a.slice(name.length + 1);
    }
  }
  return value;
}

/**
 * The argv with the value of each flag in `values` replaced (in either form): the example's
 * addresses become free local ones for a test. A flag that is not there throws.
 */
export function withValues(
  args: readonly string[],
  values: Record<string, string>,
  aliases: Record<string, string> = { '-b': '--bind' },
): string[] {
  const out = [...args];
  const seen = new Set<string>();
  for (let i = 0; i < out.length; i++) {
    const a = out[i]!;
    const eq = a.indexOf('=');
    const name = aliases[a] ?? (a.startsWith('--') && eq > 0 ? a.slice(0, eq) : a);
    const value = values[name];
    if (value === undefined) continue;
    seen.add(name);
    if (a.startsWith('--') && eq > 0) out[i] = `${name}=${value}`;
    else out[i + 1] = value;
  }
  for (const name of Object.keys(values)) {
    if (!seen.has(name)) throw new Error(`${name} is not in ${args.join(' ')}`);
  }
  return out;
}

/** The port of an arb address (`host:port`, `[v6]:port`, `:port`). */
export function portOf(address: string): number {
  const m = /:(\d+)$/.exec(address);
  if (!m) throw new Error(`no port in address ${JSON.stringify(address)}`);
  return Number(m[1]);
}

/** Kubernetes' CPU quantity in cores ("2", "1.5", "500m"). */
export function cpuCores(quantity: string | number): number {
  const s = String(quantity);
  return s.endsWith('m') ? Number(s.slice(0, -1)) / 1000 : Number(s);
}

/** A fenced code block of a Markdown file whose info string names a file: ```lang path/to/file. */
export interface FileBlock {
  lang: string;
  file: string;
  body: string;
  line: number;
}

export function fileBlocks(markdown: string): FileBlock[] {
  const lines = markdown.split('\n');
  const blocks: FileBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)\s*(.*)$/.exec(lines[i]!);
    if (!open) continue;
    const end = lines.findIndex((l, j) => j > i && l.startsWith('```'));
    if (end === -1) throw new Error(`line ${i + 1}: unclosed code block`);
    const file = open[2]!.trim();
    if (file !== '') {
      blocks.push({
        lang: open[1]!,
        file,
        body: `${lines.slice(i + 1, end).join('\n')}\n`,
        line: i + 1,
      });
    }
    i = end;
  }
  return blocks;
}
