import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = fileURLToPath(new URL('../../../', import.meta.url));

/**
 * The README examples that consumer.test.ts runs in the installed project, by repository path.
 * Each README shows its file verbatim (readme.test.ts checks it), so what a reader copies is
 * what was run.
 */
export const EXAMPLES = {
  rootConfig: 'docs/examples/arb.config.ts',
  sockServe: 'packages/sock/examples/serve.mjs',
  sockLine: 'packages/sock/examples/line-socket.mjs',
  coreLaunch: 'packages/core/examples/launch.mjs',
  companionSupervise: 'packages/companion/examples/supervise.mjs',
  cliConfig: 'apps/cli/examples/arb.config.ts',
  cliResolve: 'apps/cli/examples/resolve.mjs',
} as const;

export const readExample = (file: string): string => fs.readFileSync(path.join(REPO, file), 'utf8');

/** The READMEs whose code blocks must run: the root one and every package's. */
export function readmes(): string[] {
  const found = ['README.md'];
  for (const parent of ['packages', 'apps']) {
    for (const dir of fs.readdirSync(path.join(REPO, parent)).sort()) {
      const file = path.join(parent, dir, 'README.md');
      if (fs.existsSync(path.join(REPO, file))) found.push(file);
    }
  }
  return found;
}

export interface CodeBlock {
  readme: string;
  line: number;
  lang: string;
  /** What follows the language in the info string: a file path, `no-run`, or nothing. */
  tag: string;
  body: string;
}

/** The fenced code blocks of a README (``` at the start of a line). */
export function codeBlocks(readme: string): CodeBlock[] {
  const lines = fs.readFileSync(path.join(REPO, readme), 'utf8').split('\n');
  const blocks: CodeBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)\s*(.*)$/.exec(lines[i]!);
    if (!open) continue;
    const end = lines.findIndex((l, j) => j > i && l.startsWith('```'));
    if (end === -1) throw new Error(`${readme}:${i + 1}: unclosed code block`);
    blocks.push({
      readme,
      line: i + 1,
      lang: open[1]!,
      tag: open[2]!.trim(),
      body: `${lines.slice(i + 1, end).join('\n')}\n`,
    });
    i = end;
  }
  return blocks;
}

/** Languages whose blocks are programs: each must be a file that runs, or say `no-run`. */
export const PROGRAM_LANGS = new Set(['js', 'mjs', 'cjs', 'ts', 'mts', 'tsx', 'javascript']);
