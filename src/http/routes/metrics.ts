import type { FastifyPluginAsync } from 'fastify';
import type { Registry } from 'prom-client';
import { z } from 'zod';
import { documented } from '../openapi/route-doc.js';

export const metricsRoutes: FastifyPluginAsync<{ readonly registry: Registry }> = async (app, o) => {
  const doc = documented({
    summary: 'Prometheus metrics',
    responses: {
      200: { description: 'Text exposition format', schema: z.string(), contentType: o.registry.contentType },
    },
    errors: [],
  });
  app.get('/metrics', doc, async (_req, reply) => {
    const body = await o.registry.metrics();
    return reply.type(o.registry.contentType).send(body);
  });
};
