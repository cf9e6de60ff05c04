/** Issue 20: a v3 model scores requests without device_id / ip, and its answer names the inputs that defaulted. */
import { describe, expect, it } from 'vitest';
import { MemoryFeatureStore } from '../../../src/adapters/memory/memory-store.js';
import { entityUnion } from '../../../src/domain/features/engine.js';
import type { Manifest } from '../../../src/domain/models/manifest.js';
import type { Logger } from '../../../src/ports/logger.js';
import { ModelRegistry } from '../../../src/usecases/models/registry.js';
import { Scorer } from '../../../src/usecases/scoring/scorer.js';
import { FakeSource, fakeClock, fakeManifest, featureSets } from '../models/fakes.js';

const quiet: Logger = { info() {}, warn() {}, error() {}, debug() {}, child: () => quiet };
const noop = { observe() {}, inc() {} };
const INPUTS = ['TX_AMOUNT', 'DEVICE_ID_NB_CUSTOMERS_1DAY_WINDOW', 'CUSTOMER_ID_NEW_DEVICE_30DAY_WINDOW'];
const histogram = { edges: [0, 1, 2, 5], counts: [10, 40, 30, 15, 5] };

class V3Source extends FakeSource {
  override async readManifest(name: string, version: string): Promise<Manifest> {
    const base = await super.readManifest(name, version);
    return fakeManifest(version, {
      feature_set: { name: 'transaction', version: 3 },
      inputs: INPUTS,
      importance: Object.fromEntries(INPUTS.map((n) => [n, 1 / 3])),
      reference: {
        ...base.reference,
        features: Object.fromEntries(INPUTS.map((n) => [n, histogram])),
        moments: Object.fromEntries(INPUTS.map((n) => [n, { mean: 1, std: 1 }])),
      },
    });
  }

  override async load(name: string, version: string) {
    const loaded = await super.load(name, version);
    return {
      ...loaded,
      manifest: await this.readManifest(name, version),
      featureSet: featureSets.get('transaction_v3')!,
    };
  }
}

describe('a transaction_v3 model without device_id or ip', () => {
  it('scores with the defaults and names the defaulted inputs; with them, none', async () => {
    const clock = fakeClock();
    const registry = new ModelRegistry({
      source: new V3Source(['1']),
      logger: quiet,
      clock,
      defaultModel: 'fraudscore',
      batching: { enabled: false, maxRows: 1, maxWaitMs: 0 },
      psiWindow: 100,
    });
    await registry.activate('fraudscore', '1');
    const defaulted: string[] = [];
    const scorer = new Scorer({
      registry,
      modelName: 'fraudscore',
      store: new MemoryFeatureStore({ horizonMs: 40 * 86_400_000 }),
      featureSets,
      entities: entityUnion([...featureSets.values()]),
      clock,
      logger: quiet,
      metrics: {
        stageDuration: noop,
        decisions: noop,
        score: noop,
        degraded: noop,
        featureDefaulted: { inc: (l: { feature: string }) => void defaulted.push(l.feature) },
      },
    });
    const tx = {
      transaction_id: 'bare',
      timestamp: '2018-08-09T10:00:00Z',
      customer_id: 'C1',
      terminal_id: 'T1',
      amount: 10,
    };
    const [bare] = await scorer.score([tx], { explain: true, deadline: clock.monotonic() + 50 });
    expect(bare!.degraded).toBe(false);
    expect(bare!.model.feature_set).toBe('transaction_v3');
    expect(bare!.defaulted_features).toEqual([
      'CUSTOMER_ID_NEW_DEVICE_30DAY_WINDOW',
      'DEVICE_ID_NB_CUSTOMERS_1DAY_WINDOW',
    ]);
    expect(bare!.features).toEqual({
      TX_AMOUNT: 10,
      DEVICE_ID_NB_CUSTOMERS_1DAY_WINDOW: 0,
      CUSTOMER_ID_NEW_DEVICE_30DAY_WINDOW: 0,
    });
    expect(defaulted).toContain('DEVICE_ID_NB_CUSTOMERS_1DAY_WINDOW');
    const [full] = await scorer.score([{ ...tx, transaction_id: 'full', device_id: 'D1', ip: '192.0.2.1' }], {
      explain: true,
      deadline: clock.monotonic() + 50,
    });
    expect(full!.defaulted_features).toBeUndefined();
    expect(full!.features).toMatchObject({
      DEVICE_ID_NB_CUSTOMERS_1DAY_WINDOW: 1,
      CUSTOMER_ID_NEW_DEVICE_30DAY_WINDOW: 1,
    });
    await registry.close();
  });
});
