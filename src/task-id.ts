/** What a task id may look like: what the retry endpoints return, and nothing a URL could abuse. */
export const TASK_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/** The rule of TASK_ID_PATTERN in words, for messages. */
export const TASK_ID_RULE = '1 to 64 of A-Z a-z 0-9 _ -';

/** Whether a string is a valid task id. */
export function isTaskId(text: string): boolean {
  return TASK_ID_PATTERN.test(text);
}

/**
 * A message for something that is not a task id, quoting at most `maxShown` characters of
 * it with anything unprintable as `?`: the text may be anything, a password included.
 */
export function describeBadTaskId(text: string, maxShown: number): string {
  return `"${shortPrintable(text, maxShown)}" is not a task id (${TASK_ID_RULE})`;
}

/** At most `maxShown` characters of text, printable ASCII only, `...` when cut. */
export function shortPrintable(text: string, maxShown: number): string {
  const clean = text.slice(0, maxShown + 1).replace(/[^\x20-\x7e]/g, '?');

  return clean.length > maxShown ? `${clean.slice(0, maxShown)}...` : clean;
}
