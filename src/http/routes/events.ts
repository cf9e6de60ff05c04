import type { FastifyPluginAsync } from 'fastify';
import type { Ingest } from '../../usecases/ingest.js';
import { HttpError, validationError } from '../errors.js';
import { EventsBodySchema } from '../schemas.js';

export interface EventsRoutesOptions {
  readonly ingest: Ingest;
  readonly maxEvents: number;
  readonly onApplied?: (eventTimeMs: number) => void;
}

/** The embedded default's way in for events, and a dev/test way in for Redis. Valid events apply even when others are rejected. */
export const eventsRoutes: FastifyPluginAsync<EventsRoutesOptions> = async (app, o) => {
  const bodySchema = EventsBodySchema(o.maxEvents);
  app.post('/v1/events', async (req) => {
    const body = bodySchema.safeParse(req.body);
    if (!body.success) throw validationError(body.error);
    const batch = o.ingest.decodeTagged(body.data.events);
    let result: Awaited<ReturnType<Ingest['apply']>>;
    try {
      result = await o.ingest.apply(batch);
    } catch (err) {
      req.log.warn({ err }, 'feature store unavailable for events');
      throw new HttpError(503, 'store_unavailable', 'the feature store is unavailable; retry later');
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
