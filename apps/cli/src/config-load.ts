import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadConfigFile } from './config-file.js';
import { ConfigError } from './errors.js';

/** The built probe (next to this file in dist/); absent when running from the sources. */
const PROBE = fileURLToPath(new URL('./config-probe.js', import.meta.url));

/**
 * The master's way to load a config file: JSON in process; a JS/TS file through the probe
 * (a short-lived `node`, see config-probe.ts), so jiti never enters the master, unless it
 * exports functions (hooks), which must live where they run: then in process. Same value,
 * same ConfigError lines as {@link loadConfigFile}; a reload gets a fresh probe.
 */
export async function loadConfigLean(file: string): Promise<Record<string, unknown>> {
  if (file.endsWith('.json') || !fs.existsSync(PROBE)) return loadConfigFile(file);
  const reply = await probe(file);
  if (reply.inProcess === true) return loadConfigFile(file);
  if (Array.isArray(reply.problems)) {
    throw new ConfigError(String(reply.source ?? file), reply.problems as string[]);
  }
  return reply.value as Record<string, unknown>;
}

function probe(file: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [PROBE, file], {
      // the config's own output goes where it went when the master loaded it
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'advanced',
    });
    let reply: Record<string, unknown> | undefined;
    child.on('message', (m: Record<string, unknown>) => {
      reply = m;
    });
    child.on('error', (err) => reject(new ConfigError(file, [`cannot load: ${err.message}`])));
    child.on('exit', (code, signal) => {
      if (reply) resolve(reply);
      else
        reject(
          new ConfigError(file, [
            `cannot load: the config's process ended (${signal ?? `exit code ${code}`}) before it gave a config`,
          ]),
        );
    });
  });
}
