import { spawnSync } from 'node:child_process';
import { cp, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findHealthcheckCommand, parseDockerfile, splitStages } from '../helpers/dockerfile.js';
import { REPO_ROOT, readRepoText } from '../helpers/repo-files.js';
import { sampleValue, scrapeMetrics } from '../helpers/scrape.js';
import { createTempDir, type TempDir } from '../helpers/temp-dir.js';
import { findFreePort } from './child-process.js';
import { type ExporterProcess, startExporterProcess } from './exporter-process.js';

// No Docker engine runs in CI, so this suite replays the runtime stage of the
// Dockerfile by hand: the built dist/ with production dependencies only, in a
// folder of its own, started the way the image starts it.

const dockerfile = parseDockerfile(readRepoText('Dockerfile'));
const runtime = splitStages(dockerfile).at(-1) ?? [];
const DOCKERFILE_PORT = runtime.find((step) => step.keyword === 'EXPOSE')?.args ?? '';

/** The runtime stage's `npm ci ...` command, up to the first `&&`. */
function runtimeInstallArgs(): string[] {
  const run = runtime.find((step) => step.keyword === 'RUN' && step.args.startsWith('npm ci'));
  const [command = ''] = (run?.args ?? '').split('&&');

  return command.trim().split(/\s+/).slice(1);
}

/** Runs the Dockerfile's HEALTHCHECK against a port, as Docker would inside the container. */
function runHealthcheck(port: number): number | null {
  const [, ...args] = findHealthcheckCommand(dockerfile).map((part) =>
    part.replace(`127.0.0.1:${DOCKERFILE_PORT}`, `127.0.0.1:${port}`),
  );

  return spawnSync(process.execPath, args, { timeout: 10_000 }).status;
}

describe('the image, replayed without Docker', () => {
  let folder: TempDir | undefined;
  let exporter: ExporterProcess | undefined;

  beforeAll(async () => {
    folder = await createTempDir();
    for (const file of ['package.json', 'package-lock.json', 'dist']) {
      await cp(join(REPO_ROOT, file), join(folder.path, file), { recursive: true });
    }
    // --prefer-offline only lets npm use its cache; what gets installed is the same.
    const install = spawnSync('npm', [...runtimeInstallArgs(), '--prefer-offline'], {
      cwd: folder.path,
      encoding: 'utf8',
      timeout: 170_000,
    });
    if (install.status !== 0) {
      throw new Error(`npm ${runtimeInstallArgs().join(' ')} failed:\n${install.stderr}`);
    }

    exporter = await startExporterProcess({
      entry: join(folder.path, 'dist/main.js'),
      cwd: folder.path,
      args: ['--demo'],
      env: { NODE_ENV: 'production' },
    });
  });

  afterAll(async () => {
    await exporter?.stop();
    await folder?.remove();
  });

  it('installs the production dependencies and none of the development ones', async () => {
    const pkg = JSON.parse(readRepoText('package.json')) as {
      dependencies: Record<string, string>;
      devDependencies: Record<string, string>;
    };
    const installed = new Set(await readdir(join(folder?.path ?? '', 'node_modules')));

    expect(runtimeInstallArgs()).toContain('--omit=dev');
    expect(Object.keys(pkg.dependencies).filter((name) => !installed.has(name))).toEqual([]);
    expect(Object.keys(pkg.devDependencies).filter((name) => installed.has(name))).toEqual([]);
  });

  it('starts with --demo and serves live metrics', async () => {
    const scrape = await scrapeMetrics(exporter?.url ?? '');

    expect(sampleValue(scrape, 'drivequant_up')).toBe(1);
    expect(
      sampleValue(scrape, 'drivequant_tasks', {
        status: 'FAILED',
        task_type: 'PUSH_FAILED_CRASHES',
      }),
    ).toBeGreaterThan(0);
  });

  it("passes the Dockerfile's HEALTHCHECK, which fails when nothing answers", async () => {
    const port = Number(new URL(exporter?.url ?? '').port);

    expect(runHealthcheck(port)).toBe(0);
    expect(runHealthcheck(await findFreePort())).toBe(1);
  });
});
