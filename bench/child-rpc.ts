import { type ChildProcess, fork } from 'node:child_process';

/** A request from the benchmark to one of its child processes. */
interface RpcRequest {
  id: number;
  method: string;
  params: unknown;
}

/** The answer of a child process to one request. */
interface RpcResponse {
  id: number;
  result?: unknown;
  error?: string;
}

/** The methods a child process serves, each taking and returning plain JSON values. */
export type RpcHandlers = Record<string, (params: never) => Promise<unknown>>;

/** A child process the benchmark calls methods on, over the IPC channel. */
export interface RpcChild<Handlers extends RpcHandlers> {
  /** Calls one method in the child and waits for its result. */
  call<Method extends keyof Handlers & string>(
    method: Method,
    ...params: Parameters<Handlers[Method]>
  ): Promise<Awaited<ReturnType<Handlers[Method]>>>;
  /** Ends the child and waits until it has exited. */
  close(): Promise<void>;
}

/**
 * Starts `script` in its own Node.js process, so that its CPU time and memory are measured
 * apart from the simulator's.
 */
export function startRpcChild<Handlers extends RpcHandlers>(
  script: string,
  execArgv: string[] = [],
): RpcChild<Handlers> {
  const child: ChildProcess = fork(script, [], {
    execArgv,
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();
  let nextId = 1;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.on('message', (message: RpcResponse) => {
    const waiter = pending.get(message.id);
    pending.delete(message.id);
    if (message.error !== undefined) {
      waiter?.reject(new Error(message.error));
    } else {
      waiter?.resolve(message.result);
    }
  });
  child.once('exit', (code) => {
    for (const waiter of pending.values()) {
      waiter.reject(new Error(`${script} exited with code ${code} before answering`));
    }
    pending.clear();
  });

  return {
    call(method, ...params) {
      const id = nextId++;
      const request: RpcRequest = { id, method, params: params[0] };

      return new Promise((resolve, reject) => {
        pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
        child.send(request);
      });
    },
    async close() {
      // Disconnecting lets the child exit on its own, which --cpu-prof needs to write.
      if (child.connected) {
        child.disconnect();
      }
      const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(killer);
    },
  };
}

/** Serves `handlers` to the parent process; the child lives until the parent ends it. */
export function serveRpc(handlers: RpcHandlers): void {
  process.once('disconnect', () => process.exit(0));
  process.on('message', (request: RpcRequest) => {
    const handler = handlers[request.method];
    const answer = (response: RpcResponse) => process.send?.(response);
    if (handler === undefined) {
      answer({ id: request.id, error: `unknown method ${request.method}` });
      return;
    }

    handler(request.params as never).then(
      (result) => answer({ id: request.id, result }),
      (error: unknown) =>
        answer({ id: request.id, error: String((error as Error)?.stack ?? error) }),
    );
  });
}
