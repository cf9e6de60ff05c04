import { Cluster, Redis } from 'ioredis';
import { RedisAnswerStore } from '../../src/adapters/redis/redis-answer-store.js';
import { answerStoreConformance } from '../conformance/answer-store.suite.js';
import { requireRedis, requireRedisCluster, uniqueName } from '../helpers/services.js';
import { sleep } from '../helpers/wait.js';

const clients: (Redis | Cluster)[] = [];
const teardown = async () => {
  for (const c of clients.splice(0)) c.disconnect();
};
// Redis expires keys on its own clock: the suite's time passes for real here.
const elapse = (ms: number) => sleep(ms);

answerStoreConformance('redis', {
  async create() {
    const { url } = await requireRedis();
    const prefix = uniqueName('ans');
    const [x, y] = [new Redis(url), new Redis(url)];
    clients.push(x, y);
    return { a: new RedisAnswerStore(x, prefix), b: new RedisAnswerStore(y, prefix), elapse };
  },
  teardown,
});

answerStoreConformance('redis cluster', {
  async create() {
    const { nodes } = await requireRedisCluster();
    const prefix = uniqueName('ans');
    const [x, y] = [new Cluster(nodes), new Cluster(nodes)];
    clients.push(x, y);
    return { a: new RedisAnswerStore(x, prefix), b: new RedisAnswerStore(y, prefix), elapse };
  },
  teardown,
});
