import type { FastifyPluginAsync } from 'fastify';
import type { Registry } from 'prom-client';

export const metricsRoutes: FastifyPluginAsync<{ readonly registry: Registry }> = async (app, o) => {
  app.get('/metrics', async (_req, reply) => {
    const body = await o.registry.metrics();
    return reply.type(o.registry.contentType).send(body);
  });
};
