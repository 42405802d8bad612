import { describe, expect, it } from 'vitest';
import { DEMO_API_KEY, parseSimulatorArgs } from '../../src/simulator/simulator-cli.js';

describe('parseSimulatorArgs', () => {
  it('defaults to 127.0.0.1:9851 with the demo key', () => {
    const options = parseSimulatorArgs([], {});

    expect(options).toEqual({
      host: '127.0.0.1',
      port: 9851,
      apiKey: DEMO_API_KEY,
      apiKeySource: 'demo',
      extraTasks: 0,
      latencyMs: 0,
      timeScale: 1,
      control: false,
      help: false,
    });
  });

  it('reads the key from DRIVEQUANT_API_KEY, and --api-key over it', () => {
    const fromEnv = parseSimulatorArgs([], { DRIVEQUANT_API_KEY: 'env-key' });
    const fromFlag = parseSimulatorArgs(['--api-key=flag-key'], { DRIVEQUANT_API_KEY: 'env' });

    expect(fromEnv).toMatchObject({ apiKey: 'env-key', apiKeySource: 'DRIVEQUANT_API_KEY' });
    expect(fromFlag).toMatchObject({ apiKey: 'flag-key', apiKeySource: '--api-key' });
  });

  it('reads every flag', () => {
    const options = parseSimulatorArgs(
      ['--listen-address=[::1]:0', '--tasks=10000', '--latency=25', '--time-scale=60', '--control'],
      {},
    );

    expect(options).toMatchObject({
      host: '::1',
      port: 0,
      extraTasks: 10_000,
      latencyMs: 25,
      timeScale: 60,
      control: true,
    });
  });

  it('listens on every interface for an address without a host', () => {
    expect(parseSimulatorArgs(['--listen-address=:9999'], {})).toMatchObject({
      host: '0.0.0.0',
      port: 9999,
    });
  });

  it.each([
    [['--listen-address=localhost'], '--listen-address: "localhost" is not HOST:PORT'],
    [['--listen-address=host:99999'], '--listen-address: "host:99999" is not HOST:PORT'],
    [['--tasks=1.5'], '--tasks: "1.5" is not a whole number of 0 or more'],
    [['--latency=-3'], '--latency: "-3" is not a number of 0 or more'],
    [['--time-scale=0'], '--time-scale: "0" is not a positive number'],
    [['--verbose'], "Unknown option '--verbose'"],
  ])('rejects %j', (argv, message) => {
    expect(() => parseSimulatorArgs(argv, {})).toThrow(message);
  });
});
