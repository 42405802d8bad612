import { inspect } from 'node:util';

const REDACTED = '<secret>';

/**
 * A string that must never be printed: the DriveQuant API key, the exporter's API token.
 * Every way of turning it into text (template strings, JSON, util.inspect, a logger)
 * yields `<secret>`; only `reveal()` gives the value, at the one place that sends it.
 */
export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  /** The real value, for the request header or comparison that needs it. */
  reveal(): string {
    return this.#value;
  }

  toString(): string {
    return REDACTED;
  }

  toJSON(): string {
    return REDACTED;
  }

  [inspect.custom](): string {
    return REDACTED;
  }
}
