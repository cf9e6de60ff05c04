import { describe, expect, it, vi } from 'vitest';
import { EntityTiles } from '../../../src/adapters/memory/entity-tiles.js';
import { MemoryFeatureStore, RAW_RECORDS } from '../../../src/adapters/memory/memory-store.js';
import { DAY_MS } from '../../../src/domain/features/time.js';
import { featureStoreConformance } from '../../conformance/feature-store.suite.js';

featureStoreConformance('memory', {
  create: async (retention, limit) => new MemoryFeatureStore(retention, limit),
  links: true,
});

// Small entities are read from their records; here every bounded read goes through tiles.
featureStoreConformance('memory, tiles for every entity', {
  create: async (retention, limit) => new MemoryFeatureStore(retention, limit, { rawRecords: 0 }),
  links: true,
});

describe('MemoryFeatureStore tiles', () => {
  it('builds an entity’s tiles in the write that outgrows RAW_RECORDS, so no read builds them from a whole history', async () => {
    const store = new MemoryFeatureStore({ horizonMs: 40 * DAY_MS });
    const built = vi.spyOn(EntityTiles, 'of');
    const T0 = Date.parse('2018-05-01T00:00:00Z');
    const key = { entity: 'terminal', id: 'T1' };
    const tx = (i: number) => ({
      kind: 'tx' as const,
      key,
      txId: `t${i}`,
      t: T0 + i * 60_000,
      amount: 1 + i,
    });
    await store.apply(Array.from({ length: RAW_RECORDS }, (_, i) => tx(i)));
    expect(built).not.toHaveBeenCalled();
    await store.apply([tx(RAW_RECORDS)]);
    expect(built).toHaveBeenCalledTimes(1);
    const bounds = [T0, T0 + DAY_MS / 2, T0 + DAY_MS];
    const [summary] = await store.summarize([{ ...key, bounds }]);
    expect(built).toHaveBeenCalledTimes(1);
    expect(summary!.tiles).toBeDefined();
    built.mockRestore();
  });
});
