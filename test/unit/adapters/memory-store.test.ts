import { MemoryFeatureStore } from '../../../src/adapters/memory/memory-store.js';
import { featureStoreConformance } from '../../conformance/feature-store.suite.js';

featureStoreConformance('memory', {
  create: async (retention, limit) => new MemoryFeatureStore(retention, limit),
});
