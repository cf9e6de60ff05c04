import { MemoryProgressStore } from '../../../src/adapters/memory/memory-progress.js';
import { progressStoreConformance } from '../../conformance/progress-store.suite.js';

progressStoreConformance('memory', { create: async (clock, ttlMs) => new MemoryProgressStore(clock, ttlMs) });
