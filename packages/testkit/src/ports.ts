import net from 'node:net';

/**
 * A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then closed), for a
 * program that cannot be told to pick one itself (systemd-socket-activate refuses port 0).
 * Someone else may take it before the program binds it: start the program through
 * `retryOnPortInUse`.
 */
export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = s.address() as net.AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

/** An error (or its message) saying that a port was taken. */
function portInUse(err: unknown): boolean {
  const e = err as NodeJS.ErrnoException | undefined;
  return e?.code === 'EADDRINUSE' || /EADDRINUSE|Address already in use/.test(String(e?.message));
}

/**
 * Closes the free-port race: `start(port)` is called with a fresh `freePort()`, and again
 * with another one when it fails because the port was taken meanwhile (its error has code
 * EADDRINUSE or says "Address already in use", as systemd-socket-activate prints). Any
 * other failure, or the last one, is thrown.
 */
export async function retryOnPortInUse<T>(
  start: (port: number) => Promise<T>,
  tries = 5,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    try {
      return await start(port);
    } catch (err) {
      if (attempt >= tries || !portInUse(err)) throw err;
    }
  }
}
