import { parseArgs } from 'node:util';
import { loadConfig } from '../config.js';
import { createService } from '../wiring/service.js';

export const help = `fraudscore serve

Runs the scoring API. With no REDIS_URL / REDIS_CLUSTER_NODES it is self-contained: the in-memory feature
store (fed through POST /v1/events) and the newest model version in MODEL_DIR. Every setting is an
environment variable (README, "Configuration"). SIGTERM/SIGINT: readiness fails, in-flight requests
finish, then clients close.`;

export async function run(argv: string[]): Promise<void> {
  parseArgs({ args: argv, options: {} });
  const config = loadConfig();
  const service = await createService(config);
  const { logger } = service;
  await service.app.listen({ host: config.HOST, port: config.PORT });
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'draining');
    const force = setTimeout(() => {
      logger.error({}, 'drain timed out; exiting');
      logger.flush(() => process.exit(1));
    }, 25_000);
    force.unref();
    await service.close();
    logger.info({}, 'stopped');
    logger.flush();
  };
  // `on`, not `once`: a second signal while draining must not kill the process before its logs are written.
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}
