import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The built entry point; the e2e suite runs after `npm run build`. */
export const BUILT_MAIN = fileURLToPath(new URL('../../dist/main.js', import.meta.url));

/** An exporter running as a child process of the test. */
export interface SpawnedExporter {
  readonly child: ChildProcess;
  /** Base URL, read from its `exporter started` log line. */
  readonly url: string;
  /** Everything it wrote to standard error so far. */
  stderr(): string;
  /** Sends a signal and waits for the process to exit. */
  kill(signal: NodeJS.Signals): Promise<void>;
}

/** Throws a clear error when dist/ is missing, rather than a spawn failure. */
export function requireBuild(): void {
  if (!existsSync(BUILT_MAIN)) {
    throw new Error(`${BUILT_MAIN} is missing: run npm run build first (npm run test:e2e does)`);
  }
}

/** Starts `node dist/main.js` on a loopback port and waits until it serves. */
export async function spawnExporter(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  timeoutMs = 30_000,
): Promise<SpawnedExporter> {
  requireBuild();
  const child = spawn(
    process.execPath,
    [BUILT_MAIN, '--web.listen-address=127.0.0.1:0', '--log.format=json', ...args],
    { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no start within ${timeoutMs} ms:\n${stderr}`)),
      timeoutMs,
    );
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      stderr += chunk;
      const match =
        /"address":"([^"]+)"[^\n]*"msg":"exporter started"|"msg":"exporter started"[^\n]*"address":"([^"]+)"/.exec(
          stderr,
        );
      const address = match?.[1] ?? match?.[2];
      if (address !== undefined) {
        clearTimeout(timer);
        resolve(`http://${address}`);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exporter exited with ${code} before it started:\n${stderr}`));
    });
  });

  return {
    child,
    url,
    stderr: () => stderr,
    async kill(signal) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill(signal);
      }
      await exited;
    },
  };
}
