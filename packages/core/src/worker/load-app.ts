import fs from 'node:fs';
import type http from 'node:http';
import type { RequestListener } from 'node:http';
import type https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { http as httpModule, https as httpsModule } from '../builtins.js';
import { AppLoadError } from '../errors.js';
import { splitAppSpec } from '../settings.js';
import { locateError } from './error-location.js';

/** An object with a Web-standard `fetch(request)` (Hono, itty-router, ...). */
export interface FetchHandler {
  fetch(request: Request): Response | Promise<Response>;
}

/** What arb needs of a Fastify instance (or anything shaped like one). */
export interface FastifyLike {
  readonly server: http.Server | https.Server;
  ready(): PromiseLike<unknown>;
}

/** The app, by kind. */
export type LoadedApp =
  | { kind: 'listener'; listener: RequestListener }
  | { kind: 'fetch'; handler: FetchHandler }
  | { kind: 'server'; server: http.Server | https.Server }
  | { kind: 'fastify'; app: FastifyLike };

const TS_FILE = /\.(?:ts|mts|cts|tsx)$/;

/**
 * Imports `module[:export]` (relative to `dir`; ESM, CJS, or TypeScript through jiti) and
 * classifies the export. The export may be a promise, and a factory (a function declared
 * with no parameters, possibly async) is called once and its result classified. Every
 * failure is an {@link AppLoadError} (the worker exits 4).
 */
export async function loadApp(spec: string, dir: string): Promise<LoadedApp> {
  const { module: modulePath, exportName } = splitAppSpec(spec);
  const mod = await importModule(spec, modulePath, dir);
  let value = pickExport(mod, exportName);
  if (value === undefined) {
    throw new AppLoadError(
      spec,
      exportName ? `no export named '${exportName}'` : 'no default export',
    );
  }
  value = await value;
  const first = classify(value);
  if (first) return first;
  if (typeof value === 'function' && value.length === 0) {
    let made: unknown;
    try {
      made = await (value as () => unknown)();
    } catch (err) {
      throw new AppLoadError(spec, `the factory threw: ${firstLine(err)}`, {
        cause: err,
      });
    }
    const second = classify(made);
    if (second) return second;
    throw new AppLoadError(spec, `the factory returned ${describe(made)}, which is not an app`);
  }
  throw new AppLoadError(spec, `the export is ${describe(value)}, which is not an app`);
}

/**
 * The absolute file of an app spec (`path/to/module[:export]`, relative to `dir`); throws
 * {@link AppLoadError} when there is no such file. Cheap: callers check before starting.
 */
export function appFile(spec: string, dir: string): string {
  const file = path.resolve(dir, splitAppSpec(spec).module);
  checkReadable(spec, file);
  return file;
}

/** `no file X`, or `permission denied reading X` for this process's user (`-u`), or nothing. */
function checkReadable(what: string, file: string): void {
  try {
    fs.accessSync(file, fs.constants.R_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM') {
      throw new AppLoadError(
        what,
        `permission denied reading ${file} (as uid ${process.getuid?.()})`,
      );
    }
    throw new AppLoadError(what, `no file ${file}`);
  }
}

/** Imports a module file by path: native `import()` for JS, jiti for TypeScript. */
export async function importModule(
  what: string,
  modulePath: string,
  dir: string,
): Promise<Record<string, unknown>> {
  const file = path.resolve(dir, modulePath);
  checkReadable(what, file);
  try {
    if (TS_FILE.test(file)) {
      const { createJiti } = await import('jiti');
      const jiti = createJiti(pathToFileURL(file).href, {
        interopDefault: false,
        moduleCache: true,
      });
      return (await jiti.import(file)) as Record<string, unknown>;
    }
    return (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (err) {
    throw new AppLoadError(what, `importing ${file} threw: ${firstLine(err)}`, {
      cause: err,
      thrown: describeThrown(err),
      where: locateError(err, file),
    });
  }
}

/** `Name: first line of the message`; jiti's parse errors are the syntax errors they are. */
function describeThrown(err: unknown): string {
  if (!(err instanceof Error)) return firstLine(err);
  const parse = /^ParseError: (.*)/.exec(firstLine(err));
  if (parse) return `SyntaxError: ${parse[1]!.trim()}`;
  return `${err.name}: ${firstLine(err)}`;
}

function pickExport(mod: Record<string, unknown>, name: string | undefined): unknown {
  if (name === undefined) return mod.default;
  if (name in mod) return mod[name];
  // a CJS module whose named exports the ESM loader could not detect
  const def = mod.default;
  if (def && (typeof def === 'object' || typeof def === 'function') && name in def) {
    return (def as Record<string, unknown>)[name];
  }
  return undefined;
}

/** The rule, in order: Fastify instance, server, fetch handler, request listener (arity ≥ 1). */
export function classify(value: unknown): LoadedApp | undefined {
  if (value === null || (typeof value !== 'object' && typeof value !== 'function'))
    return undefined;
  const v = value as Record<string, unknown>;
  if (isServer(v.server) && typeof v.ready === 'function') {
    return { kind: 'fastify', app: value as FastifyLike };
  }
  if (isServer(value)) return { kind: 'server', server: value };
  if (typeof v.fetch === 'function') return { kind: 'fetch', handler: value as FetchHandler };
  if (typeof value === 'function' && value.length >= 1) {
    return { kind: 'listener', listener: value as RequestListener };
  }
  return undefined;
}

function isServer(value: unknown): value is http.Server | https.Server {
  // net first: a master that preloads need not load http (see builtins.ts)
  if (!(value instanceof net.Server)) return false;
  return value instanceof httpModule().Server || value instanceof httpsModule().Server;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'function') return `a function of ${value.length} parameters`;
  if (typeof value === 'object')
    return `an object (${Object.keys(value).slice(0, 5).join(', ') || 'no keys'})`;
  return `${typeof value} ${JSON.stringify(value)}`;
}

/** The first line of an error's message: Node appends a multi-line require stack to some. */
function firstLine(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.split('\n')[0]!;
}
