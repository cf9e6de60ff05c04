import type { FastifyPluginAsync } from 'fastify';
import { TaggedEventSchema } from '../../domain/events.js';
import type { EntitySpec } from '../../domain/features/engine.js';
import type { StoreEvent } from '../../domain/features/records.js';
import { countOutcomes, toStoreEvents } from '../../domain/ingest.js';
import type { FeatureStore } from '../../ports/feature-store.js';
import { HttpError, problemsOf, validationError } from '../errors.js';
import { EventsBodySchema } from '../schemas.js';

export interface EventsRoutesOptions {
  readonly store: FeatureStore;
  readonly entities: readonly EntitySpec[];
  readonly maxEvents: number;
  readonly onApplied?: (eventTimeMs: number) => void;
}

/** The embedded default's way in for events, and a dev/test way in for Redis. Valid events apply even when others are rejected. */
export const eventsRoutes: FastifyPluginAsync<EventsRoutesOptions> = async (app, o) => {
  const bodySchema = EventsBodySchema(o.maxEvents);
  app.post('/v1/events', async (req) => {
    const body = bodySchema.safeParse(req.body);
    if (!body.success) throw validationError(body.error);
    const rejected: { index: number; problems: ReturnType<typeof problemsOf> }[] = [];
    const events: StoreEvent[] = [];
    const spans: number[] = [];
    body.data.events.forEach((raw, index) => {
      const e = TaggedEventSchema.safeParse(raw);
      if (!e.success) {
        rejected.push({ index, problems: problemsOf(e.error, `events.${index}`) });
        return;
      }
      const { type, ...payload } = e.data;
      const mapped = toStoreEvents(type, payload as never, o.entities);
      events.push(...mapped);
      spans.push(mapped.length);
    });
    let outcomes: Awaited<ReturnType<FeatureStore['apply']>>;
    try {
      outcomes = await o.store.apply(events);
    } catch (err) {
      req.log.warn({ err }, 'feature store unavailable for events');
      throw new HttpError(503, 'store_unavailable', 'the feature store is unavailable; retry later');
    }
    const counts = countOutcomes(outcomes, spans);
    if (events.length) o.onApplied?.(Math.max(...events.map((e) => e.t)));
    return { applied: counts.applied, duplicates: counts.duplicate, late: counts.late, rejected };
  });
};
