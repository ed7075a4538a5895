/** Base class of every error `@arb/core` throws on purpose. */
export class ArbError extends Error {
  override name = 'ArbError';
}

/** A setting has a wrong type or value. */
export class SettingError extends ArbError {
  override name = 'SettingError';
  constructor(
    readonly key: string,
    readonly value: unknown,
    message: string,
    /** Append `(got <value>)`: false when the message names the value already. */
    showValue = true,
  ) {
    super(`${key}: ${message}${showValue ? ` (got ${JSON.stringify(value)})` : ''}`);
  }
}

/** The pidfile could not be created: another live process owns it, or its directory is missing. */
export class PidfileError extends ArbError {
  override name = 'PidfileError';
  constructor(
    readonly path: string,
    message: string,
    /** The live pid found in the file, when that is the reason. */
    readonly pid?: number,
  ) {
    super(message);
  }
}

/** The app module could not be imported, or its export is not something arb can serve. */
export class AppLoadError extends ArbError {
  override name = 'AppLoadError';
  constructor(
    readonly app: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`cannot load app '${app}': ${message}`, options);
  }
}

/**
 * Thrown inside the master loop to end it: `halt(reason, status)` follows.
 * gunicorn's `HaltServer`.
 */
export class HaltServer extends ArbError {
  override name = 'HaltServer';
  constructor(
    readonly reason: string,
    readonly status: number,
    /** Stop the workers gracefully (TERM) or quickly (INT/QUIT). */
    readonly graceful = true,
  ) {
    super(reason);
  }
}
