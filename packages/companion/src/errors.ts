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
