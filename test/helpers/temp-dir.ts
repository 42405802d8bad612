import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A fresh directory under the system's temp dir, removed by `remove()`. */
export interface TempDir {
  readonly path: string;
  /** Writes a file inside the directory and returns its absolute path. */
  write(name: string, content: string): Promise<string>;
  remove(): Promise<void>;
}

/** Creates a temp directory for one test. */
export async function createTempDir(): Promise<TempDir> {
  const path = await mkdtemp(join(tmpdir(), 'dq-exporter-test-'));

  return {
    path,
    async write(name, content) {
      const file = join(path, name);
      await writeFile(file, content);
      return file;
    },
    remove: () => rm(path, { recursive: true, force: true }),
  };
}
