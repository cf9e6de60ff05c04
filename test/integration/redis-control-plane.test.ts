import { Cluster, Redis } from 'ioredis';
import { RedisControlPlane } from '../../src/adapters/redis/redis-control-plane.js';
import { controlPlaneConformance } from '../conformance/control-plane.suite.js';
import { requireRedis, requireRedisCluster, uniqueName } from '../helpers/services.js';

const clients: (Redis | Cluster)[] = [];
const teardown = async () => {
  for (const c of clients.splice(0)) c.disconnect();
};

controlPlaneConformance('redis', {
  async create(clock) {
    const { url } = await requireRedis();
    const prefix = uniqueName('ctl');
    const [x, y] = [new Redis(url), new Redis(url)];
    clients.push(x, y);
    return { a: new RedisControlPlane(x, prefix, clock), b: new RedisControlPlane(y, prefix, clock) };
  },
  teardown,
});

controlPlaneConformance('redis cluster', {
  async create(clock) {
    const { nodes } = await requireRedisCluster();
    const prefix = uniqueName('ctl');
    const [x, y] = [new Cluster(nodes), new Cluster(nodes)];
    clients.push(x, y);
    return { a: new RedisControlPlane(x, prefix, clock), b: new RedisControlPlane(y, prefix, clock) };
  },
  teardown,
});
