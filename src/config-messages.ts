import { type Document, isMap, isScalar, isSeq } from 'yaml';
import type { z } from 'zod';

// How configuration problems are worded: key paths, and values shown without secrets,
// without anything that came from the environment, and cut to a readable length.

/** The variables each `${VAR}` expansion used, by key path (see pathKey). */
export type Expansions = Map<string, string[]>;

/** What the config text says about where values came from, for messages that show them. */
export interface ValueOrigins {
  /** Values that came from the environment, by key path: they are never shown. */
  expansions: Expansions;
  /** Source text of each task id that YAML read as a number or boolean, by list index. */
  unquotedTaskIds: Map<number, string>;
}

export function pathKey(path: readonly PropertyKey[]): string {
  return JSON.stringify(path.map(String));
}

/** Keys whose values are secrets wherever they appear. */
const SECRET_KEYS: ReadonlySet<PropertyKey> = new Set(['api_key', 'token']);

/** Longest text shown of a value or a YAML token, in characters. */
const MAX_SHOWN_CHARACTERS = 100;

/** A value's stand-in in a message, serialised bare at the top and as a string inside JSON. */
class Hidden {
  constructor(readonly text: string) {}

  toJSON(): string {
    return this.text;
  }
}

/**
 * The value at `path` as a message may show it: secrets and anything expanded from the
 * environment are replaced (`<value from ${VAR}>`), then it is cut to a readable length
 * with control and other non-printable characters escaped.
 */
export function describeValue(
  value: unknown,
  path: readonly PropertyKey[],
  origins: ValueOrigins,
): string {
  const shown = hideSecrets(value, path, origins.expansions);
  if (shown instanceof Hidden) {
    return shown.text;
  }

  return printable(JSON.stringify(shown) ?? String(shown));
}

function hideSecrets(
  value: unknown,
  path: readonly PropertyKey[],
  expansions: Expansions,
): unknown {
  if (SECRET_KEYS.has(path.at(-1) ?? '')) {
    return new Hidden('<secret>');
  }
  const names = expansions.get(pathKey(path));
  if (names !== undefined) {
    return new Hidden(`<value from ${names.map((name) => `\${${name}}`).join(', ')}>`);
  }
  if (Array.isArray(value)) {
    return value.map((item, index) => hideSecrets(item, [...path, index], expansions));
  }
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [
        key,
        hideSecrets(item, [...path, key], expansions),
      ]),
    );
  }

  return value;
}

/** Cuts text to MAX_SHOWN_CHARACTERS, escaping what a terminal or log should not get raw. */
export function printable(text: string): string {
  let shown = '';
  for (const character of text) {
    // \uFFFD stands for bytes that were not UTF-8: the file is binary there.
    const piece = /[\p{C}\uFFFD]/u.test(character) ? escapeCharacter(character) : character;
    if (shown.length + piece.length > MAX_SHOWN_CHARACTERS) {
      return `${shown}... (${Array.from(text).length} characters)`;
    }
    shown += piece;
  }

  return shown;
}

function escapeCharacter(character: string): string {
  const code = character.codePointAt(0) ?? 0;

  return code > 0xffff ? `\\u{${code.toString(16)}}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

/** Source text of each task id that YAML read as a number or boolean: `0x1F` reads as 31. */
export function findUnquotedTaskIds(document: Document): Map<number, string> {
  const found = new Map<number, string>();
  const tasks = isMap(document.contents) ? document.contents.get('tasks', true) : undefined;
  if (!isSeq(tasks)) {
    return found;
  }

  for (const [index, item] of tasks.items.entries()) {
    if (!isScalar(item) || item.source === undefined) {
      continue;
    }
    if (typeof item.value === 'number' || typeof item.value === 'boolean') {
      found.set(index, item.source);
    }
  }

  return found;
}

export function describeIssue(
  issue: z.core.$ZodIssue,
  raw: unknown,
  origins: ValueOrigins,
): string[] {
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => `${formatPath([...issue.path, key])}: unknown key`);
  }

  const path = formatPath(issue.path);
  const value = valueAt(raw, issue.path);
  if (value === undefined) {
    return [`${path}: is required`];
  }
  const [section, index] = issue.path;
  const unquoted =
    section === 'tasks' && typeof index === 'number' && issue.path.length === 2
      ? origins.unquotedTaskIds.get(index)
      : undefined;
  if (unquoted !== undefined && issue.code === 'invalid_type') {
    const source = printable(unquoted);
    return [
      `${path}: must be quoted: YAML reads ${source} as a ${typeof value}, write "${source}"`,
    ];
  }
  if (issue.code === 'custom' && issue.params?.hideValue === true) {
    return [`${path}: ${issue.message}`];
  }
  const message =
    issue.code === 'invalid_type' && issue.expected === 'object'
      ? 'must be a map of keys'
      : issue.message;

  return [`${path}: ${message}, got ${describeValue(value, issue.path, origins)}`];
}

/** The value at a key path of parsed YAML, or undefined. */
export function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let current = root;
  for (const key of path) {
    if (current === null || typeof current !== 'object') {
      return undefined;
    }
    current = (current as Record<PropertyKey, unknown>)[key];
  }

  return current;
}

/** A key path as messages show it: `poll.interval`, `tasks[3]`. */
export function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) {
    return '(top level)';
  }

  return path
    .map((key, index) =>
      typeof key === 'number' ? `[${key}]` : `${index > 0 ? '.' : ''}${printable(String(key))}`,
    )
    .join('');
}

/** A short reason for a failed file read: "no such file", "permission denied"... */
export function describeFsError(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') {
    return 'no such file';
  }
  if (code === 'EACCES') {
    return 'permission denied';
  }
  if (code === 'EISDIR') {
    return 'is a directory';
  }

  return code ?? String(error);
}
