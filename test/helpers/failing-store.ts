import type { FeatureStore } from '../../src/ports/feature-store.js';

/** A feature store whose every call fails as an unreachable Redis would. */
export function failingStore(): FeatureStore {
  return {
    kind: 'broken',
    apply: () => Promise.reject(new Error('connection refused')),
    summarize: () => Promise.reject(new Error('connection refused')),
    read: () => Promise.reject(new Error('connection refused')),
    ping: () => Promise.reject(new Error('connection refused')),
    close: async () => {},
  };
}
