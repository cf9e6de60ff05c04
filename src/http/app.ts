import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  LogController,
} from 'fastify';
import type { Registry } from 'prom-client';
import type { Metrics } from '../adapters/metrics/metrics.js';
import type { Config } from '../config.js';
import type { EntitySpec } from '../domain/features/engine.js';
import type { Clock } from '../ports/clock.js';
import type { FeatureStore } from '../ports/feature-store.js';
import type { ScoringService } from '../ports/scoring.js';
import { registerErrorHandling } from './errors.js';
import { eventsRoutes } from './routes/events.js';
import { healthRoutes } from './routes/health.js';
import { metricsRoutes } from './routes/metrics.js';
import { openApiDocument, openApiRoutes } from './routes/openapi.js';
import { scoreRoutes } from './routes/score.js';

export interface AppDeps {
  /** A pino logger: Fastify needs its full interface. */
  readonly logger: FastifyBaseLogger;
  readonly clock: Clock;
  readonly registry: Registry;
  readonly metrics: Metrics;
  readonly store: FeatureStore;
  readonly entities: readonly EntitySpec[];
  readonly scoring: ScoringService;
  readonly version: string;
  /** Extra plugins (the admin API) registered by the wiring when configured. */
  readonly plugins?: readonly ((app: FastifyInstance) => PromiseLike<unknown>)[];
  readonly onEventApplied?: (eventTimeMs: number) => void;
}

const MAX_EVENTS = 10_000;

/** Builds the HTTP app; it does not listen, so tests drive it with `app.inject()`. */
export async function build(config: Config, deps: AppDeps): Promise<FastifyInstance> {
  let draining = false;
  const app = Fastify({
    loggerInstance: deps.logger,
    bodyLimit: config.BODY_LIMIT_BYTES,
    logController: new LogController({ disableRequestLogging: true }),
    requestIdHeader: 'x-request-id',
    genReqId: () => crypto.randomUUID(),
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    // Router errors (over-long or undecodable URLs) come before any handler: give them our error format too.
    frameworkErrors: (err, _req, reply) =>
      (reply as FastifyReply).code(err.statusCode ?? 400).send({
        error: {
          code: err.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 'uri_too_long' : 'bad_url',
          message: 'malformed or over-long URL',
        },
      }),
  });
  registerErrorHandling(app);
  // JSON only: any other content type is a 415, not a string for the schema to puzzle over.
  app.removeContentTypeParser('text/plain');

  app.addHook('onRequest', async (req) => {
    (req as { startedAt?: number }).startedAt = deps.clock.monotonic();
  });
  app.addHook('onResponse', async (req, reply) => {
    const started = (req as { startedAt?: number }).startedAt ?? deps.clock.monotonic();
    deps.metrics.httpDuration.observe(
      {
        route: req.routeOptions.url ?? 'unmatched',
        method: req.method,
        status_code: String(reply.statusCode),
      },
      (deps.clock.monotonic() - started) / 1000,
    );
  });
  app.addHook('onClose', async () => {
    draining = true;
  });

  await app.register(healthRoutes, { scoring: deps.scoring, draining: () => draining });
  await app.register(metricsRoutes, { registry: deps.registry });
  await app.register(scoreRoutes, {
    scoring: deps.scoring,
    deadlineMs: config.REQUEST_DEADLINE_MS,
    maxBatch: config.BATCH_MAX_TRANSACTIONS,
    now: () => deps.clock.monotonic(),
  });
  await app.register(eventsRoutes, {
    store: deps.store,
    entities: deps.entities,
    maxEvents: MAX_EVENTS,
    ...(deps.onEventApplied ? { onApplied: deps.onEventApplied } : {}),
  });
  await app.register(openApiRoutes, {
    document: openApiDocument({
      version: deps.version,
      maxBatch: config.BATCH_MAX_TRANSACTIONS,
      maxEvents: MAX_EVENTS,
    }),
  });
  for (const plugin of deps.plugins ?? []) await plugin(app);
  return app;
}
