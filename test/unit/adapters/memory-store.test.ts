import { MemoryFeatureStore } from '../../../src/adapters/memory/memory-store.js';
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
