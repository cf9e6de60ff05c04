import type { FastifyPluginAsync } from 'fastify';
import type { ScoringService } from '../../ports/scoring.js';

export interface HealthRoutesOptions {
  readonly scoring: ScoringService;
  /** True once shutdown began: readiness fails so the load balancer stops sending while we drain. */
  readonly draining: () => boolean;
}

export const healthRoutes: FastifyPluginAsync<HealthRoutesOptions> = async (app, o) => {
  app.get('/health/live', async () => ({ status: 'ok' }));
  app.get('/health/ready', async (_req, reply) => {
    const r = await o.scoring.readiness();
    const draining = o.draining();
    const ready = r.ready && !draining;
    return reply.code(ready ? 200 : 503).send({
      status: ready ? 'ready' : 'not_ready',
      checks: { ...r.checks, ...(draining ? { shutdown: { ok: false, detail: 'draining' } } : {}) },
    });
  });
};
