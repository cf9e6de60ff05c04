import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { ServiceError } from '../../domain/errors.js';
import { TaggedEventSchema } from '../../domain/events.js';
import type { Ingest } from '../../usecases/ingest.js';
import { requireBearer } from '../bearer.js';
import { validationError } from '../errors.js';
import { documented } from '../openapi/route-doc.js';
import { EventsBodySchema, EventsResultSchema } from '../schemas.js';

export interface EventsRoutesOptions {
  readonly ingest: Ingest;
  readonly maxEvents: number;
  /** EVENTS_TOKEN: when set, writes need it as a bearer token. */
  readonly token?: string;
  readonly onApplied?: (eventTimeMs: number) => void;
}

/**
 * Events into the feature store: the embedded default's way in (open, for the local demo) and, behind
 * EVENTS_TOKEN, a way in for a shared store. Valid events apply even when others are rejected.
 */
export const eventsRoutes: FastifyPluginAsync<EventsRoutesOptions> = async (app, o) => {
  const bodySchema = EventsBodySchema(o.maxEvents);
  if (o.token) app.addHook('onRequest', requireBearer(o.token, 'events'));
  const doc = documented({
    summary: `Apply up to ${o.maxEvents} transaction and label events to the feature store`,
    body: z.object({ events: z.array(TaggedEventSchema).min(1).max(o.maxEvents) }).strict(),
    responses: {
      200: { description: 'Counts, and each rejected event with its problems', schema: EventsResultSchema },
    },
    errors: [
      'invalid_request',
      'store_unavailable',
      ...(o.token ? (['unauthorized', 'forbidden'] as const) : []),
    ],
    ...(o.token ? { bearer: 'events' as const } : {}),
  });
  app.post('/v1/events', doc, async (req) => {
    const body = bodySchema.safeParse(req.body);
    if (!body.success) throw validationError(body.error);
    const batch = o.ingest.decodeTagged(body.data.events);
    let result: Awaited<ReturnType<Ingest['apply']>>;
    try {
      result = await o.ingest.apply(batch);
    } catch (err) {
      req.log.warn({ err }, 'feature store unavailable for events');
      throw new ServiceError('store_unavailable', 'the feature store is unavailable; retry later');
    }
    if (Number.isFinite(result.newest)) o.onApplied?.(result.newest);
    const { counts } = result;
    return {
      applied: counts.applied,
      duplicates: counts.duplicate,
      late: counts.late,
      // Invalid or dated too far ahead (`future`): the problems say which.
      rejected: batch.refused.map(({ index, problems }) => ({ index, problems })),
    };
  });
};
