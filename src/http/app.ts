import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  LogController,
} from 'fastify';
import type { Registry } from 'prom-client';
import type { Config } from '../config.js';
import type { Clock } from '../ports/clock.js';
import type { HttpMetrics } from '../ports/metrics.js';
import type { ScoringService } from '../ports/scoring.js';
import type { Ingest } from '../usecases/ingest.js';
import type { ModelRegistry } from '../usecases/models/registry.js';
import { registerErrorHandling } from './errors.js';
import { adminRoutes } from './routes/admin.js';
import { eventsRoutes } from './routes/events.js';
import { healthRoutes } from './routes/health.js';
import { metricsRoutes } from './routes/metrics.js';
import { openApiDocument, openApiRoutes } from './routes/openapi.js';
import { scoreRoutes } from './routes/score.js';

export interface AppDeps {
  /** A pino logger: Fastify needs its full interface. */
  readonly logger: FastifyBaseLogger;
  readonly clock: Clock;
  /** The Prometheus registry /metrics exposes. */
  readonly registry: Registry;
  readonly metrics: HttpMetrics;
  readonly scoring: ScoringService;
  readonly ingest: Ingest;
  /** The model lifecycle the admin API drives; the admin API exists only with ADMIN_TOKEN set. */
  readonly models: ModelRegistry;
  readonly version: string;
  readonly onEventApplied?: (eventTimeMs: number) => void;
}

const MAX_EVENTS = 10_000;

/**
 * Builds the HTTP app with every route (the admin API when ADMIN_TOKEN is set); it does not listen, so tests
 * drive it with `app.inject()`. Everything it needs comes in `deps`: the composition root (src/wiring) passes
 * the real adapters, a test may pass fakes.
 */
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
    limit: { clock: deps.clock, maxFutureMs: config.MAX_EVENT_FUTURE_MS },
  });
  await app.register(eventsRoutes, {
    ingest: deps.ingest,
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
  if (config.ADMIN_TOKEN)
    await app.register(adminRoutes, { registry: deps.models, token: config.ADMIN_TOKEN });
  return app;
}
