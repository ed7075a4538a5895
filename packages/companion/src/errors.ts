/**
 * Typed errors. Each carries the offending value so callers (the CLI, the arbiter) can
 * report precisely without parsing messages.
 */

/** A companions config that cannot be used. Nothing has been started or changed. */
export class CompanionConfigError extends Error {
  override readonly name = 'CompanionConfigError';
  constructor(
    message: string,
    /** Companion name (or `#<index>` when it has no usable name); null for top-level keys. */
    readonly companion: string | null,
    /** Offending key, e.g. `stopSignal`, `defaults.stopTimeout`, `workers`. */
    readonly key: string | null,
    /** The offending value as given. */
    readonly value: unknown,
  ) {
    super(message);
  }
}

/** Another live process is listening on the control socket path; we never delete it. */
export class SocketInUseError extends Error {
  override readonly name = 'SocketInUseError';
  readonly code = 'EADDRINUSE';
  constructor(readonly path: string) {
    super(`address in use: ${path} (another live process is listening on it)`);
  }
}

/** The control socket path exists but is not a socket; we never delete it. */
export class SocketPathError extends Error {
  override readonly name = 'SocketPathError';
  constructor(
    readonly path: string,
    reason: string,
  ) {
    super(`cannot use control socket path ${path}: ${reason}`);
  }
}

/** Failure talking to a manager's control socket (connect, timeout, bad reply). */
export class CompanionClientError extends Error {
  override readonly name = 'CompanionClientError';
  constructor(
    message: string,
    /** `ENOENT`, `ECONNREFUSED`, `ETIMEDOUT`, `EBADREPLY`, or another errno code. */
    readonly code: string,
    readonly socketPath: string,
  ) {
    super(message);
  }
}
