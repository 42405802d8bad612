import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../helpers/repo-files.js';
import {
  findFreePort,
  type ManagedProcess,
  startManagedProcess,
  waitUntilServing,
} from './child-process.js';

/** The built entry point; the e2e suite runs after `npm run build`. */
export const BUILT_MAIN = join(REPO_ROOT, 'dist/main.js');

/** Throws a clear error when dist/ is missing, rather than a spawn failure. */
export function requireBuild(): void {
  if (!existsSync(BUILT_MAIN)) {
    throw new Error(`${BUILT_MAIN} is missing: run npm run build first (npm run test:e2e does)`);
  }
}

/** How to start the exporter's binary. */
export interface ExporterProcessOptions {
  /** Arguments after the script, such as `--demo`; the listen address is added. */
  args: string[];
  /** The script to run; the repository's dist/main.js by default. */
  entry?: string;
  /** Working folder; the repository's root by default. */
  cwd?: string;
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** How long to wait for /-/ready, in milliseconds; 30 s by default. */
  startTimeoutMs?: number;
}

/** The exporter running as a child process, as a user or a container runs it. */
export interface ExporterProcess extends ManagedProcess {
  /** Base URL, e.g. `http://127.0.0.1:41234`. */
  readonly url: string;
  /** `host:port` for a scrape config. */
  readonly address: string;
}

/**
 * Starts `node <entry> <args> --web.listen-address=127.0.0.1:<free port>` and
 * waits until /-/ready answers, that is until the first poll cycle is done.
 */
export async function startExporterProcess(
  options: ExporterProcessOptions,
): Promise<ExporterProcess> {
  if (options.entry === undefined) {
    requireBuild();
  }

  const address = `127.0.0.1:${await findFreePort()}`;
  const url = `http://${address}`;
  // All of the output is kept: tests assert that a secret appears nowhere in it.
  const managed = startManagedProcess(
    process.execPath,
    [options.entry ?? BUILT_MAIN, ...options.args, `--web.listen-address=${address}`],
    {
      cwd: options.cwd ?? REPO_ROOT,
      env: { ...process.env, ...options.env },
      keepChars: Number.POSITIVE_INFINITY,
    },
  );
  await waitUntilServing(managed, `${url}/-/ready`, options.startTimeoutMs ?? 30_000);

  return { ...managed, url, address };
}
