import { Cluster, Redis } from 'ioredis';
import { RedisFeatureStore } from '../../src/adapters/redis/redis-store.js';
import { featureStoreConformance } from '../conformance/feature-store.suite.js';
import { requireRedis, requireRedisCluster, uniqueName } from '../helpers/services.js';

featureStoreConformance('redis', {
  async create(retention) {
    const { url } = await requireRedis();
    return new RedisFeatureStore(new Redis(url), { prefix: uniqueName('conf'), retention });
  },
});

featureStoreConformance('redis cluster', {
  async create(retention) {
    const { nodes } = await requireRedisCluster();
    return new RedisFeatureStore(new Cluster(nodes), { prefix: uniqueName('conf'), retention });
  },
});
