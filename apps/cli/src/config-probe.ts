// `node config-probe.js FILE`: loads a JS/TS config file in a process of its own and sends
// its value to the parent over IPC, so that the master never loads jiti (and Babel) for it:
// they would stay in the master's memory for good, ~13 MB of RSS (docs/BENCHMARKS.md).
// The reply: { value } when the value is plain data (it arrives exactly, by structured
// clone); { inProcess: true } when it holds functions (hooks) or other objects, which only
// the process that runs them can load; { source, problems } for a ConfigError.
import { loadConfigFile } from './config-file.js';
import { ConfigError } from './errors.js';
import { isPlainData } from './plain-data.js';

const file = process.argv[2] ?? '';
let reply: Record<string, unknown>;
try {
  const value = await loadConfigFile(file);
  reply = isPlainData(value) ? { value } : { inProcess: true };
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  reply = { source: err.source, problems: err.problems };
}
process.send?.(reply, () => process.disconnect());
