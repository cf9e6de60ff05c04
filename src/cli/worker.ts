import { parseArgs } from 'node:util';
import { Registry } from 'prom-client';
import { createMetrics, workerObserver } from '../adapters/metrics/metrics.js';
import { startMetricsServer } from '../adapters/metrics/metrics-server.js';
import { loadConfig } from '../config.js';
import { buildInfo } from '../version.js';
import { wire } from '../wiring/shared.js';

export const help = `fraudscore worker

Consumes the transactions and labels topics (KAFKA_BROKERS, KAFKA_GROUP_ID, KAFKA_TOPIC_*) into the feature
store (REDIS_URL or REDIS_CLUSTER_NODES). Offsets are committed only after the store has the data.
Poison messages go to KAFKA_TOPIC_DEAD_LETTER. With METRICS_PORT, serves /metrics and /health/live there.
SIGTERM finishes the batch in hand, commits and exits.`;

export async function run(argv: string[]): Promise<void> {
  parseArgs({ args: argv, options: {} });
  const config = loadConfig();
  if (!config.KAFKA_BROKERS || !(config.REDIS_URL || config.REDIS_CLUSTER_NODES))
    throw new Error('fraudscore worker needs KAFKA_BROKERS and REDIS_URL or REDIS_CLUSTER_NODES');
  const registry = new Registry();
  const metrics = createMetrics(registry, buildInfo());
  const deps = await wire(config, {
    needs: 'worker',
    workerObserver: workerObserver(metrics, (t) =>
      metrics.featureFreshness.set(Math.max(0, (Date.now() - t) / 1000)),
    ),
  });
  const server = config.METRICS_PORT
    ? await startMetricsServer(registry, config.HOST, config.METRICS_PORT)
    : undefined;
  await deps.worker!.start();
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    deps.logger.info({ signal }, 'stopping worker');
    await deps.close();
    server?.close();
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
}
