import { afterEach, describe, expect, it } from 'vitest';
import { ModelLoadError } from '../../../src/domain/models/load-error.js';
import { ModelRegistry } from '../../../src/usecases/models/registry.js';
import { type ModelWatch, startModelWatch, type WatchMode } from '../../../src/usecases/models/watch.js';
import { FakeSource, fakeClock, silentLogger } from './fakes.js';

const INTERVAL = 10;

async function until(check: () => boolean | Promise<boolean>, ms = 2_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}
const polls = (n: number) => new Promise((r) => setTimeout(r, INTERVAL * n));

describe('startModelWatch', () => {
  let watch: ModelWatch | undefined;
  afterEach(() => watch?.stop());

  async function setup(mode: WatchMode, onDisk: string[] = ['1']) {
    const versions = [...onDisk];
    const source = new FakeSource(versions);
    const registry = new ModelRegistry({
      source,
      logger: silentLogger,
      clock: fakeClock(),
      defaultModel: 'fraudscore',
      batching: { enabled: false, maxRows: 1, maxWaitMs: 0 },
      psiWindow: 100,
    });
    await registry.activate('fraudscore', '1');
    const logs: { msg: string; o: Record<string, unknown> }[] = [];
    const logger = {
      info: (o: object, msg = '') => logs.push({ o: o as Record<string, unknown>, msg }),
      warn: (o: object, msg = '') => logs.push({ o: o as Record<string, unknown>, msg }),
    };
    watch = startModelWatch(registry, { mode, name: 'fraudscore', intervalMs: INTERVAL, logger });
    await polls(2);
    const model = async () => (await registry.list())[0]!;
    return { versions, source, registry, logs, model };
  }

  it('activates a new version once its manifest appears, and only newer ones', async () => {
    const { versions, registry, model } = await setup('activate');
    versions.push('2');
    await until(() => registry.active()?.version === '2');
    expect(await model()).toMatchObject({ active: '2', previous: '1' });
    await registry.rollback('fraudscore');
    await polls(3);
    expect(registry.active()?.version).toBe('1');
  });

  it('canaries a new version at the configured share', async () => {
    const { versions, registry, model } = await setup('canary');
    versions.push('2');
    await until(async () => (await model()).canary !== undefined);
    expect(await model()).toMatchObject({ active: '1', canary: { version: '2', percent: 10 } });
    expect(registry.active()?.version).toBe('1');
  });

  it('only loads in load mode, keeping just the newest watched version', async () => {
    const { versions, registry, model } = await setup('load');
    versions.push('2');
    await until(() => registry.get('fraudscore', '2') !== undefined);
    versions.push('3');
    await until(() => registry.get('fraudscore', '3') !== undefined);
    await until(() => registry.get('fraudscore', '2') === undefined);
    const states = (await model()).versions.map((v) => [v.version, v.state]);
    expect(states).toEqual([
      ['1', 'active'],
      ['2', 'available'],
      ['3', 'loaded'],
    ]);
  });

  it('ignores versions already on disk when it starts', async () => {
    const { registry } = await setup('activate', ['1', '2']);
    await polls(3);
    expect(registry.active()?.version).toBe('1');
  });

  it('reports a refused version through the registry and keeps watching', async () => {
    const { versions, source, registry, logs, model } = await setup('activate');
    source.failing.set('2', new ModelLoadError('checksum_mismatch', 'checksum mismatch', 'fraudscore', '2'));
    versions.push('2');
    await until(async () => (await model()).versions.find((v) => v.version === '2')?.state === 'failed');
    expect(registry.active()?.version).toBe('1');
    expect(logs.some((l) => l.msg === 'model watch could not use a new version' && l.o.version === '2')).toBe(
      true,
    );
    const loadsAfterFailure = source.loads;
    await polls(3);
    expect(source.loads).toBe(loadsAfterFailure);
    versions.push('3');
    await until(() => registry.active()?.version === '3');
  });

  it('survives a listing that throws', async () => {
    const { source, versions, registry } = await setup('activate');
    const list = source.list.bind(source);
    source.list = () => Promise.reject(new Error('EIO'));
    await polls(3);
    source.list = list;
    versions.push('2');
    await until(() => registry.active()?.version === '2');
  });

  it('does nothing after stop, and nothing at all when off', async () => {
    const { versions, registry } = await setup('activate');
    await watch!.stop();
    versions.push('2');
    await polls(3);
    expect(registry.active()?.version).toBe('1');
    const off = startModelWatch(
      {
        latest: () => {
          throw new Error('must not poll');
        },
      } as never,
      { mode: 'off', name: 'fraudscore', logger: silentLogger },
    );
    await off.stop();
  });
});
