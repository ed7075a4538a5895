/** A bind address that cannot be parsed. `address` is the input as given. */
export class AddressError extends Error {
  override readonly name = 'AddressError';
  readonly code = 'ERR_ARB_ADDRESS';
  constructor(
    readonly address: string,
    reason: string,
  ) {
    super(`invalid address ${JSON.stringify(address)}: ${reason}`);
  }
}

/**
 * A listener that could not be created. `address` names it (`127.0.0.1:8000`,
 * `unix:/run/app.sock`, `fd://3`); `errno` is the system error name when there is one.
 */
export class BindError extends Error {
  override readonly name: string = 'BindError';
  readonly code = 'ERR_ARB_BIND';
  constructor(
    readonly address: string,
    /** Why, without the address: `address in use (by pid 1234)`. */
    readonly reason: string,
    readonly errno?: string,
    /** The process listening on the address, when /proc tells (EADDRINUSE only). */
    readonly pid?: number,
  ) {
    super(`cannot listen on ${address}: ${reason}`);
  }
}

/** Inherited descriptors (ARB_FD, LISTEN_FDS, fd://N) that are not usable listeners. */
export class InheritError extends Error {
  override readonly name = 'InheritError';
  readonly code = 'ERR_ARB_INHERIT';
  constructor(
    readonly fd: number,
    reason: string,
  ) {
    super(`inherited fd ${fd}: ${reason}`);
  }
}

/** `reusePort` asked for on a Node.js that cannot set SO_REUSEPORT. */
export class ReusePortError extends Error {
  override readonly name = 'ReusePortError';
  readonly code = 'ERR_ARB_REUSE_PORT';
  constructor(readonly nodeVersion: string) {
    super(
      `reusePort needs Node.js >= 22.12 (this is ${nodeVersion}); remove reusePort or upgrade Node.js`,
    );
  }
}

/**
 * A unix socket path that another live process listens on (or that we may not connect to,
 * which may be just as live): never deleted, never taken over. `path` is absolute.
 */
export class SocketInUseError extends BindError {
  override readonly name: string = 'SocketInUseError';
  constructor(readonly path: string) {
    super(`unix:${path}`, 'address in use (another process is listening on it)', 'EADDRINUSE');
  }
}

/**
 * A unix socket path that cannot be claimed: a regular file or a directory is there (left
 * alone), the directory is missing or not writable. `path` is absolute; `errno` the cause.
 */
export class SocketPathError extends BindError {
  override readonly name: string = 'SocketPathError';
  constructor(
    readonly path: string,
    reason: string,
    errno?: string,
  ) {
    super(`unix:${path}`, reason, errno);
  }
}
