import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/** The full path of an executable found on PATH, or undefined. */
export function findExecutable(name: string): string | undefined {
  for (const folder of (process.env.PATH ?? '').split(delimiter)) {
    const candidate = join(folder, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not in this folder.
    }
  }

  return undefined;
}

/**
 * Which of the tools are missing, and whether their tests should be skipped:
 * on a developer's machine they are, with a warning; in CI (env CI set) they
 * are not, so the tests fail instead of passing without having run.
 */
export function checkTools(names: readonly string[]): { missing: string[]; skip: boolean } {
  const missing = names.filter((name) => findExecutable(name) === undefined);
  const skip = missing.length > 0 && !process.env.CI;
  if (skip) {
    console.warn(
      `Skipping tests that need ${missing.join(', ')}: not found on PATH. Install Debian's prometheus and prometheus-alertmanager packages (as .ci/run does); with CI set, these tests fail instead.`,
    );
  }

  return { missing, skip };
}

/** What a finished command printed and how it ended. */
export interface CommandResult {
  exitCode: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion; a tool that is not installed is an error that says so. */
export function runCommand(command: string, args: readonly string[], cwd: string): CommandResult {
  const result = spawnSync(command, args, { cwd, encoding: 'utf8', timeout: 60_000 });
  if (result.error) {
    const hint =
      (result.error as NodeJS.ErrnoException).code === 'ENOENT' ? ' (not installed?)' : '';
    throw new Error(`cannot run ${command} ${args.join(' ')}${hint}: ${result.error.message}`, {
      cause: result.error,
    });
  }

  return { exitCode: result.status, stdout: result.stdout, stderr: result.stderr };
}
