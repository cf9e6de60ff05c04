import { parseArgs } from 'node:util';
import { loadConfig } from '../config.js';
import { wire } from '../wiring.js';

export const help = `fraudscore worker

Consumes the transactions and labels topics (KAFKA_BROKERS, KAFKA_GROUP_ID, KAFKA_TOPIC_*) into the feature
store (REDIS_URL or REDIS_CLUSTER_NODES). Offsets are committed only after the store has the data.
Poison messages go to KAFKA_TOPIC_DEAD_LETTER. SIGTERM finishes the batch in hand, commits and exits.`;

export async function run(argv: string[]): Promise<void> {
  parseArgs({ args: argv, options: {} });
  const config = loadConfig();
  const deps = await wire(config, { needs: 'worker' });
  const worker = deps.worker;
  if (!worker) throw new Error('fraudscore worker needs KAFKA_BROKERS and REDIS_URL or REDIS_CLUSTER_NODES');
  await worker.start();
  const stop = async (signal: string) => {
    deps.logger.info({ signal }, 'stopping worker');
    await deps.close();
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
}
