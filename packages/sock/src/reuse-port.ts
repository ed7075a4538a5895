import type { Server } from 'node:net';
import { type ParsedAddress, parseAddress } from './address.js';
import { AddressError, ReusePortError } from './errors.js';

/** Whether `server.listen({ reusePort: true })` exists: Node.js >= 22.12 (and 23.1+). */
export function reusePortSupported(version: string = process.versions.node): boolean {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  return major > 22 || (major === 22 && minor >= 12);
}

/** Throws {@link ReusePortError} unless this Node.js can set SO_REUSEPORT. */
export function assertReusePort(version: string = process.versions.node): void {
  if (!reusePortSupported(version)) throw new ReusePortError(version);
}

/**
 * In `reusePort` mode each worker binds its own socket on the shared TCP address and the
 * kernel balances connections between them. Unix paths cannot be shared this way.
 */
export async function listenReusePort(
  server: Server,
  address: string | ParsedAddress,
  backlog = 2048,
): Promise<void> {
  assertReusePort();
  const parsed = typeof address === 'string' ? parseAddress(address) : address;
  if (parsed.kind !== 'tcp') {
    throw new AddressError(
      typeof address === 'string' ? address : JSON.stringify(address),
      'reusePort works with TCP addresses only',
    );
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    const options = { host: parsed.host, port: parsed.port, backlog, reusePort: true };
    server.listen(options, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
