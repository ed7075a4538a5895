// The companion manager's `--loader`: lets `arb companion reread` re-import an arb config in
// any format the CLI reads (TypeScript included), fresh each time, and take its companions.
import { loadConfigFile } from './config-file.js';

export async function loadCompanions(file: string): Promise<unknown> {
  return (await loadConfigFile(file)).companions ?? {};
}
