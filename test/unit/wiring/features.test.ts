import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config.js';
import { loadFeatures } from '../../../src/wiring/stores.js';

describe('loadFeatures', () => {
  it('serves every feature set of FEATURE_DIR by default, and their entities', () => {
    const f = loadFeatures(loadConfig({}));
    expect([...f.featureSets.keys()].sort()).toEqual(['transaction_v1', 'transaction_v2', 'transaction_v3']);
    expect(f.entities.map((e) => e.name).sort()).toEqual(['customer', 'device', 'ip', 'network', 'terminal']);
  });

  it('serves only the sets FEATURE_SETS names: their entities alone are read and written', () => {
    const f = loadFeatures(loadConfig({ FEATURE_SETS: 'transaction_v1,transaction_v2' }));
    expect([...f.featureSets.keys()]).toEqual(['transaction_v1', 'transaction_v2']);
    expect(f.entities.map((e) => e.name).sort()).toEqual(['customer', 'terminal']);
  });

  it('refuses a FEATURE_SETS id that FEATURE_DIR does not define, naming it', () => {
    expect(() => loadFeatures(loadConfig({ FEATURE_SETS: 'transaction_v2,transaction_v9' }))).toThrow(
      /transaction_v9/,
    );
  });
});
