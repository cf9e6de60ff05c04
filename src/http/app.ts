import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from 'fastify';
import type { Registry } from 'prom-client';
import type { Config } from '../config.js';
import type { Clock } from '../ports/clock.js';
import type { HttpMetrics } from '../ports/metrics.js';
import type { ScoringService } from '../ports/scoring.js';
import type { Tracer } from '../ports/tracer.js';
import type { Ingest } from '../usecases/ingest.js';
import type { ModelFleet } from '../usecases/models/fleet.js';
import type { ModelRegistry } from '../usecases/models/registry.js';
import type { Performance } from '../usecases/performance.js';
import { answerError, registerErrorHandling } from './errors.js';
import { collectRoutes } from './openapi/collect.js';
import { openApiDocument } from './openapi/document.js';
import { deferredRequestLogger } from './request-logger.js';
import { adminRoutes } from './routes/admin.js';
import { eventsRoutes } from './routes/events.js';
import { healthRoutes } from './routes/health.js';
import { inferenceRoutes } from './routes/inference.js';
import { metricsRoutes } from './routes/metrics.js';
import { openApiRoutes } from './routes/openapi.js';
import { scoreRoutes } from './routes/score.js';
import { traceRequests } from './tracing.js';

export interface AppDeps {
  /** A pino logger: Fastify needs its full interface. */
  readonly logger: FastifyBaseLogger;
  readonly clock: Clock;
  /** The Prometheus registry /metrics exposes. */
  readonly registry: Registry;
  readonly metrics: HttpMetrics;
  readonly scoring: ScoringService;
  readonly ingest: Ingest;
  /** This replica's model versions, and the shared serving state the admin API changes (with ADMIN_TOKEN only). */
  readonly models: ModelRegistry;
  readonly fleet: ModelFleet;
  /** Live model performance (GET /admin/models/:name/performance), when the decision log is on. */
  readonly performance?: Performance;
  readonly version: string;
  readonly onEventApplied?: (eventTimeMs: number) => void;
  /** Given when tracing is on: a server span per request, parent of the use cases' spans. */
  readonly tracer?: Tracer;
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
    childLoggerFactory: deferredRequestLogger,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    // Router errors (over-long or undecodable URLs) come before any handler: answer them like any other.
    frameworkErrors: (err, req, reply) => answerError(err, req as FastifyRequest, reply as FastifyReply),
  });
  registerErrorHandling(app);
  const routes = collectRoutes(app);
  const trace = deps.tracer ? traceRequests(app, deps.tracer) : undefined;
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
    batchDeadlinePerTransactionMs: config.BATCH_DEADLINE_PER_TRANSACTION_MS,
    batchDeadlineMaxMs: config.BATCH_DEADLINE_MAX_MS,
    maxBatch: config.BATCH_MAX_TRANSACTIONS,
    now: () => deps.clock.monotonic(),
    limit: { clock: deps.clock, maxFutureMs: config.MAX_EVENT_FUTURE_MS },
    ...(trace ? { trace } : {}),
  });
  // Feature state is the model's view of the world: on a shared store (Redis, or one fed by Kafka) nobody
  // writes to it over HTTP without the events token; only the embedded in-memory demo stays open.
  const sharedStore = Boolean(config.REDIS_URL || config.REDIS_CLUSTER_NODES || config.KAFKA_BROKERS);
  if (config.EVENTS_TOKEN || !sharedStore)
    await app.register(eventsRoutes, {
      ingest: deps.ingest,
      maxEvents: MAX_EVENTS,
      ...(config.EVENTS_TOKEN ? { token: config.EVENTS_TOKEN } : {}),
      ...(deps.onEventApplied ? { onApplied: deps.onEventApplied } : {}),
    });
  await app.register(inferenceRoutes, {
    prefix: '/v2',
    registry: deps.models,
    model: config.MODEL_NAME,
    draining: () => draining,
    version: deps.version,
    maxRows: config.BATCH_MAX_TRANSACTIONS,
    ...(config.ADMIN_TOKEN ? { token: config.ADMIN_TOKEN } : {}),
    ...(trace ? { trace } : {}),
  });
  await app.register(openApiRoutes, { document: () => openApiDocument({ version: deps.version }, routes) });
  if (config.ADMIN_TOKEN)
    await app.register(adminRoutes, {
      registry: deps.models,
      fleet: deps.fleet,
      token: config.ADMIN_TOKEN,
      ...(deps.performance ? { performance: deps.performance } : {}),
    });
  return app;
}
