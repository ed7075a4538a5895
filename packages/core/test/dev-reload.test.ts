// The source watch of development mode on a real directory tree: real inotify events.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DevReloadError, SourceWatcher } from '../src/master/dev-reload.js';
import { tempDir, waitFor } from './helpers.js';

const dirs: string[] = [];
const watchers: SourceWatcher[] = [];

afterEach(() => {
  for (const w of watchers.splice(0)) w.close();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** A tree with a source file, a dependency two levels deep and a git dir. */
function tree(): string {
  const dir = tempDir();
  dirs.push(dir);
  fs.mkdirSync(path.join(dir, 'src', 'routes'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'node_modules', 'dep', 'lib'), { recursive: true });
  fs.mkdirSync(path.join(dir, '.git', 'objects'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'src', 'app.mjs'), 'export default 1;\n');
  return dir;
}

async function watch(
  dir: string,
  more: Partial<Parameters<typeof SourceWatcher.start>[0]> = {},
): Promise<{ w: SourceWatcher; batches: string[][]; warnings: string[] }> {
  const batches: string[][] = [];
  const warnings: string[] = [];
  const w = await SourceWatcher.start({
    dirs: [dir],
    files: [],
    own: [],
    debounce: 50,
    onChange: (paths) => batches.push(paths.sort()),
    onWarning: (m) => warnings.push(m),
    ...more,
  });
  watchers.push(w);
  return { w, batches, warnings };
}

/** Resolves after a quiet period long enough for a pending batch to have fired. */
const quiet = () => new Promise((r) => setTimeout(r, 300));

describe('SourceWatcher', () => {
  it('watches every directory but node_modules and .git, one inotify watch each', async () => {
    const dir = tree();
    const { w } = await watch(dir);
    // dir, src, src/routes
    expect(w.watched).toBe(3);
    expect(w.roots).toEqual([dir]);
  });

  it('reports an edit deep in the tree, and a directory created later and what goes in it', async () => {
    const dir = tree();
    const { w, batches } = await watch(dir);
    fs.writeFileSync(path.join(dir, 'src', 'routes', 'a.mjs'), 'x');
    await waitFor(() => batches.length === 1, 5000, 'the first batch');
    expect(batches[0]).toEqual([path.join(dir, 'src', 'routes', 'a.mjs')]);

    fs.mkdirSync(path.join(dir, 'src', 'later'));
    await waitFor(() => batches.length === 2, 5000, 'the new directory');
    expect(w.watched).toBe(4);
    fs.writeFileSync(path.join(dir, 'src', 'later', 'b.mjs'), 'y');
    await waitFor(() => batches.length === 3, 5000, 'a file in the new directory');
    expect(batches[2]).toEqual([path.join(dir, 'src', 'later', 'b.mjs')]);

    // removed: a change, and its watch goes
    fs.rmSync(path.join(dir, 'src', 'later'), { recursive: true });
    await waitFor(() => batches.length === 4, 5000, 'the removal');
    expect(batches[3]).toContain(path.join(dir, 'src', 'later'));
    await waitFor(() => w.watched === 3, 5000, 'the watch of the removed directory to go');
  });

  it('leaves out ignored globs, own paths, editor files and files gone before they were seen', async () => {
    const dir = tree();
    fs.mkdirSync(path.join(dir, 'logs'));
    fs.mkdirSync(path.join(dir, 'run'));
    const { w, batches } = await watch(dir, {
      ignore: ['*.log', 'src/gen/**', 'logs'],
      own: [path.join(dir, 'run'), path.join(dir, 'access.txt')],
    });
    expect(w.watched).toBe(3); // logs and run are not watched at all
    fs.writeFileSync(path.join(dir, 'node_modules', 'dep', 'lib', 'i.js'), '1');
    fs.writeFileSync(path.join(dir, '.git', 'HEAD'), 'ref');
    fs.writeFileSync(path.join(dir, 'server.log'), 'line');
    fs.writeFileSync(path.join(dir, 'src', 'x.log'), 'line');
    fs.mkdirSync(path.join(dir, 'src', 'gen'));
    fs.writeFileSync(path.join(dir, 'src', 'gen', 'out.js'), '1');
    fs.writeFileSync(path.join(dir, 'logs', 'a'), 'line');
    fs.writeFileSync(path.join(dir, 'run', 'pid'), '1');
    fs.writeFileSync(path.join(dir, 'access.txt'), 'GET /');
    fs.writeFileSync(path.join(dir, 'src', '.app.mjs.swp'), 'vim');
    fs.writeFileSync(path.join(dir, 'src', 'app.mjs~'), 'backup');
    // a temporary file renamed away at once (a socket claim, an editor's write test)
    fs.writeFileSync(path.join(dir, '.tmp123'), '');
    fs.renameSync(path.join(dir, '.tmp123'), path.join(dir, 'run', 'moved'));
    await quiet();
    expect(batches).toEqual([]);
    // the watch was on all along: the next edit is reported, alone
    fs.writeFileSync(path.join(dir, 'src', 'app.mjs'), 'export default 2;\n');
    await waitFor(() => batches.length === 1, 5000, 'the edit');
    expect(batches[0]).toEqual([path.join(dir, 'src', 'app.mjs')]);
  });

  it('makes one batch of a burst of writes', async () => {
    const dir = tree();
    const { batches } = await watch(dir, { debounce: 150 });
    const file = path.join(dir, 'src', 'app.mjs');
    for (let i = 0; i < 6; i++) {
      fs.writeFileSync(file, `export default ${i};\n`);
      await new Promise((r) => setTimeout(r, 20));
    }
    fs.writeFileSync(path.join(dir, 'src', 'other.mjs'), '1');
    await waitFor(() => batches.length === 1, 5000, 'the batch');
    await quiet();
    expect(batches).toEqual([[file, path.join(dir, 'src', 'other.mjs')]]);
  });

  it('watches a single file outside the tree through its directory (an atomic save too)', async () => {
    const dir = tree();
    const elsewhere = tempDir();
    dirs.push(elsewhere);
    const config = path.join(elsewhere, 'arb.config.mjs');
    fs.writeFileSync(config, 'export default {};\n');
    const { w, batches } = await watch(path.join(dir, 'src'), { files: [config] });
    expect(w.watched).toBe(3); // src, src/routes, the config's directory
    fs.writeFileSync(path.join(elsewhere, 'unrelated.txt'), 'x');
    await quiet();
    expect(batches).toEqual([]);
    // an editor's atomic save: write a temporary file, rename it over the original
    fs.writeFileSync(`${config}.tmp`, 'export default { workers: 2 };\n');
    fs.renameSync(`${config}.tmp`, config);
    await waitFor(() => batches.length === 1, 5000, 'the config change');
    expect(batches[0]).toEqual([config]);
  });

  it('refuses a root it cannot watch, naming it and the reason', async () => {
    const file = path.join(tree(), 'not-a-dir');
    fs.writeFileSync(file, 'a file');
    const err = await watch(path.join(file, 'below')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DevReloadError);
    expect((err as DevReloadError).message).toBe(
      `--reload: cannot watch ${path.join(file, 'below')}: ENOTDIR`,
    );
  });
});
