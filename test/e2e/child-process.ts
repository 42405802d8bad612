import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';

/** A server started by a test, which must be stopped even when the test fails. */
export interface ManagedProcess {
  readonly child: ChildProcess;
  /** What the process printed so far on stdout and stderr (the last `keepChars` of it). */
  logs(): string;
  /** Sends a signal and waits for the process to exit (SIGKILL after 10 s). Safe to call twice. */
  kill(signal: NodeJS.Signals): Promise<void>;
  /** Stops the process (SIGTERM, then SIGKILL after 10 s). Safe to call twice. */
  stop(): Promise<void>;
}

/** How to spawn a managed process. */
export interface ManagedProcessOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** How much of the output logs() keeps, in characters; 64 000 by default. */
  keepChars?: number;
}

/** A TCP port free on 127.0.0.1 at the time of the call. */
export async function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Resolves true once the child has exited, or false after `timeoutMs`. */
function waitForExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve(true);
  }

  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/**
 * Spawns a server process and keeps its output. If the test run ends without
 * calling stop(), a process exit handler kills it, so no server outlives vitest.
 */
export function startManagedProcess(
  command: string,
  args: readonly string[],
  options: ManagedProcessOptions = {},
): ManagedProcess {
  const { keepChars = 64_000, ...spawnOptions } = options;
  const child = spawn(command, args, { ...spawnOptions, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-keepChars);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  child.once('error', (error) => {
    output += `\ncannot run ${command}: ${error.message}`;
  });
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);

  const kill = async (signal: NodeJS.Signals) => {
    process.removeListener('exit', killOnExit);
    if (child.exitCode === null && child.signalCode === null) {
      child.kill(signal);
    }
    if (!(await waitForExit(child, 10_000))) {
      child.kill('SIGKILL');
      await waitForExit(child, 5_000);
    }
  };

  return { child, logs: () => output, kill, stop: () => kill('SIGTERM') };
}

/**
 * Waits until `GET url` answers 2xx; fails at once if the process exits, with
 * its output, and stops it on failure.
 */
export async function waitUntilServing(
  managed: ManagedProcess,
  url: string,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  while (Date.now() < deadline) {
    if (managed.child.exitCode !== null || managed.child.signalCode !== null) {
      lastError = `the process exited (code ${managed.child.exitCode}, signal ${managed.child.signalCode})`;
      break;
    }
    try {
      if ((await fetch(url)).ok) {
        return;
      }
      lastError = 'not ready yet';
    } catch (error) {
      lastError = (error as Error).message;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }

  await managed.stop();
  throw new Error(`${url} is not serving: ${lastError}\n${managed.logs()}`);
}
