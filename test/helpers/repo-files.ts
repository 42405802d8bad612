import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

/** The repository's root folder. */
export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** A file of the repository, as text; `path` is relative to the root. */
export function readRepoText(path: string): string {
  return readFileSync(join(REPO_ROOT, path), 'utf8');
}

/** A YAML file of the repository, parsed; `path` is relative to the root. */
export function readRepoYaml<T>(path: string): T {
  return parse(readRepoText(path)) as T;
}

/** The user documentation: everything a user needs is in README.md. */
export function readDocumentation(): string {
  return readRepoText('README.md');
}
