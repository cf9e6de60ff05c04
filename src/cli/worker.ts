import { parseArgs } from 'node:util';
import { loadConfig } from '../config.js';
import { startWorkerProcess } from '../wiring/worker.js';

export const help = `fraudscore worker

Consumes the transactions and labels topics (KAFKA_BROKERS, KAFKA_GROUP_ID, KAFKA_TOPIC_*) into the feature
store (REDIS_URL or REDIS_CLUSTER_NODES). Offsets are committed only after the store has the data.
Poison messages go to KAFKA_TOPIC_DEAD_LETTER. With METRICS_PORT, serves /metrics and /health/live there.
SIGTERM finishes the batch in hand, commits and exits.`;

export async function run(argv: string[]): Promise<void> {
  parseArgs({ args: argv, options: {} });
  const worker = await startWorkerProcess(loadConfig());
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    worker.logger.info({ signal }, 'stopping worker');
    await worker.close();
  };
  // `on`, not `once`: a second signal while draining must not kill the process before its logs are written.
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}
