import type { FastifyPluginAsync } from 'fastify';
import type { ScoringService } from '../../ports/scoring.js';
import { documented } from '../openapi/route-doc.js';

export interface HealthRoutesOptions {
  readonly scoring: ScoringService;
  /** True once shutdown began: readiness fails so the load balancer stops sending while we drain. */
  readonly draining: () => boolean;
}

export const healthRoutes: FastifyPluginAsync<HealthRoutesOptions> = async (app, o) => {
  const liveDoc = documented({
    summary: 'Liveness',
    responses: { 200: { description: 'Process is up' } },
    errors: [],
  });
  app.get('/health/live', liveDoc, async () => ({ status: 'ok' }));

  const readyDoc = documented({
    summary: 'Readiness: a model warmed up and the feature store reachable',
    responses: { 200: { description: 'Ready' }, 503: { description: 'Not ready, or draining' } },
    errors: [],
  });
  app.get('/health/ready', readyDoc, async (_req, reply) => {
    const r = await o.scoring.readiness();
    const draining = o.draining();
    const ready = r.ready && !draining;
    return reply.code(ready ? 200 : 503).send({
      status: ready ? 'ready' : 'not_ready',
      checks: { ...r.checks, ...(draining ? { shutdown: { ok: false, detail: 'draining' } } : {}) },
    });
  });
};
