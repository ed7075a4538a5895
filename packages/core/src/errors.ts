import type { AppFailure } from './protocol/worker.js';
import type { SourceLocation } from './worker/error-location.js';

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
  /** What importing the app threw, as one line: `SyntaxError: Unexpected end of input`. */
  readonly thrown: string | undefined;
  /** Where: the syntax error, or the frame of the app that threw (when known). */
  readonly where: SourceLocation | undefined;
  constructor(
    readonly app: string,
    message: string,
    options?: { cause?: unknown; thrown?: string; where?: SourceLocation },
  ) {
    super(`cannot load app '${app}': ${message}`, { cause: options?.cause });
    this.thrown = options?.thrown;
    this.where = options?.where;
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
    /** With status 4: why the app could not be loaded, as the worker reported it. */
    readonly app?: AppFailure,
  ) {
    super(reason);
  }
}
