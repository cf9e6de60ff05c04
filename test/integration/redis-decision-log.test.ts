import { Cluster, Redis } from 'ioredis';
import { systemClock } from '../../src/adapters/clock/system-clock.js';
import { RedisDecisionLog } from '../../src/adapters/redis/redis-decision-log.js';
import { decisionLogConformance } from '../conformance/decision-log.suite.js';
import { requireRedis, requireRedisCluster, uniqueName } from '../helpers/services.js';
import { sleep } from '../helpers/wait.js';

const clients: (Redis | Cluster)[] = [];
const teardown = async () => {
  for (const c of clients.splice(0)) c.disconnect();
};
// Redis expires keys on its own clock: the suite's time passes for real here.
const elapse = (ms: number) => sleep(ms);

decisionLogConformance('redis', {
  async create(horizonMs) {
    const { url } = await requireRedis();
    const client = new Redis(url);
    clients.push(client);
    const prefix = uniqueName('dlog');
    return { log: new RedisDecisionLog(client, { prefix, clock: systemClock, horizonMs }), elapse };
  },
  teardown,
});

decisionLogConformance('redis cluster', {
  async create(horizonMs) {
    const { nodes } = await requireRedisCluster();
    const client = new Cluster(nodes);
    clients.push(client);
    const prefix = uniqueName('dlog');
    return { log: new RedisDecisionLog(client, { prefix, clock: systemClock, horizonMs }), elapse };
  },
  teardown,
});
