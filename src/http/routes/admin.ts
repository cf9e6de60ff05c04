import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { type ErrorCode, MODEL_LOAD_ERRORS, ServiceError } from '../../domain/errors.js';
import { ModelNameSchema, ModelVersionSchema } from '../../domain/models/names.js';
import type { ModelFleet } from '../../usecases/models/fleet.js';
import type { ModelRegistry } from '../../usecases/models/registry.js';
import type { Performance } from '../../usecases/performance.js';
import { requireBearer } from '../bearer.js';
import { validationError } from '../errors.js';
import { documented, type RouteDoc } from '../openapi/route-doc.js';

export interface AdminRoutesOptions {
  /** This replica's versions, for listings and loads that concern it alone. */
  readonly registry: ModelRegistry;
  /** The shared serving state: every role change goes through it, so every replica applies it. */
  readonly fleet: ModelFleet;
  readonly token: string;
  /** Live model performance from the decision log; absent when DECISION_LOG is off. */
  readonly performance?: Performance;
}

const Params = z.object({ name: ModelNameSchema, version: ModelVersionSchema.optional() });
const VersionBody = z.object({ version: ModelVersionSchema }).strict();
const PerformanceQuery = z
  .object({
    since: z
      .union([z.iso.date(), z.iso.datetime({ offset: true })], {
        error: 'must be a date (2026-01-31) or an ISO-8601 date-time with a zone',
      })
      .optional()
      .describe('Count decisions made on this UTC day or later (a date-time counts from its day)'),
  })
  .strict();
const CanaryBody = VersionBody.extend({ percent: z.number().gt(0).max(100) }).strict();

/** Every admin route is behind the token: the onRequest hook below answers 401 and 403. */
const guarded = (doc: Omit<RouteDoc, 'bearer'>) =>
  documented({ ...doc, bearer: 'admin', errors: ['unauthorized', 'forbidden', ...doc.errors] });
const AFTER_CHANGE = { 200: { description: "The model's versions and roles after the change" } };
const CHANGE_ERRORS: readonly ErrorCode[] = ['invalid_request', ...MODEL_LOAD_ERRORS];
/** A shared change can also meet a concurrent one, or an unreachable control plane. */
const SHARED_ERRORS: readonly ErrorCode[] = ['conflict', 'control_plane_unavailable'];

/**
 * Model lifecycle under /admin, behind the admin bearer token (never the events token). Role changes
 * (activate, rollback, canary, shadow) are validated on this replica, then written to the shared serving state
 * that every replica follows; the answer shows this replica after applying it. A load concerns this replica only.
 */
export const adminRoutes: FastifyPluginAsync<AdminRoutesOptions> = async (app, o) => {
  app.addHook('onRequest', requireBearer(o.token, 'admin'));

  const params = (req: FastifyRequest) => {
    const p = Params.safeParse(req.params);
    if (!p.success) throw validationError(p.error, 'params');
    return p.data;
  };
  const body = <T extends z.ZodType>(schema: T, req: FastifyRequest): z.infer<T> => {
    const b = schema.safeParse(req.body ?? {});
    if (!b.success) throw validationError(b.error);
    return b.data;
  };
  const change = async <T>(req: FastifyRequest, action: string, detail: object, fn: () => Promise<T>) => {
    try {
      const out = await fn();
      req.log.info({ audit: 'admin', action, ...detail, outcome: 'ok' }, `admin ${action}`);
      return out;
    } catch (err) {
      req.log.warn(
        { audit: 'admin', action, ...detail, outcome: 'refused', reason: (err as Error).message },
        `admin ${action} refused`,
      );
      throw err;
    }
  };
  const summary = async (name: string) => {
    const [models, fleet] = await Promise.all([o.registry.list(), o.fleet.status(name)]);
    const local = models.find((m) => m.name === name);
    return local && { ...local, fleet };
  };

  const listDoc = guarded({
    summary:
      "Every model on disk or in memory, with each version's state, evaluation and last failure on this replica, and for each model the shared desired state, every live replica's observed state and whether they converged",
    responses: { 200: { description: 'The models' } },
    errors: [],
  });
  app.get('/admin/models', listDoc, async () => {
    const models = await o.registry.list();
    return {
      models: await Promise.all(models.map(async (m) => ({ ...m, fleet: await o.fleet.status(m.name) }))),
    };
  });

  const loadDoc = guarded({
    summary: 'Load and verify a version without giving it a role',
    params: Params,
    responses: AFTER_CHANGE,
    errors: CHANGE_ERRORS,
  });
  app.post('/admin/models/:name/versions/:version/load', loadDoc, async (req) => {
    const { name, version } = params(req);
    await change(req, 'load', { model: name, version }, () => o.registry.load(name, version!));
    return summary(name);
  });

  const activateDoc = guarded({
    summary: 'Make a version the one that serves; the one it replaces becomes the rollback target',
    params: Params,
    body: VersionBody,
    responses: AFTER_CHANGE,
    errors: [...CHANGE_ERRORS, ...SHARED_ERRORS],
  });
  app.post('/admin/models/:name/activate', activateDoc, async (req) => {
    const { name } = params(req);
    const { version } = body(VersionBody, req);
    await change(req, 'activate', { model: name, version }, () => o.fleet.activate(name, version));
    return summary(name);
  });

  const rollbackDoc = guarded({
    summary: 'Restore the previously active version',
    params: Params,
    responses: AFTER_CHANGE,
    errors: [...CHANGE_ERRORS, 'no_previous', ...SHARED_ERRORS],
  });
  app.post('/admin/models/:name/rollback', rollbackDoc, async (req) => {
    const { name } = params(req);
    await change(req, 'rollback', { model: name }, () => o.fleet.rollback(name));
    return summary(name);
  });

  const canaryDoc = guarded({
    summary: 'Send a share of customers (sticky by customer id) to a version instead of the active one',
    params: Params,
    body: CanaryBody,
    responses: AFTER_CHANGE,
    errors: [...CHANGE_ERRORS, 'invalid_argument', 'no_active', ...SHARED_ERRORS],
  });
  app.put('/admin/models/:name/canary', canaryDoc, async (req) => {
    const { name } = params(req);
    const canary = body(CanaryBody, req);
    await change(req, 'canary_set', { model: name, ...canary }, () => o.fleet.setCanary(name, canary));
    return summary(name);
  });

  const clearCanaryDoc = guarded({
    summary: 'Stop the canary',
    params: Params,
    responses: AFTER_CHANGE,
    errors: ['invalid_request', ...SHARED_ERRORS],
  });
  app.delete('/admin/models/:name/canary', clearCanaryDoc, async (req) => {
    const { name } = params(req);
    await change(req, 'canary_clear', { model: name }, () => o.fleet.clearCanary(name));
    return summary(name);
  });

  const performanceDoc = guarded({
    summary:
      "Live performance of each version from labels joined with its recorded decisions (the fleet's numbers), and the champion against the challenger (DeLong: paired for a shadow, unpaired for a canary)",
    params: Params,
    query: PerformanceQuery,
    responses: { 200: { description: 'Per-version metrics and the comparison' } },
    errors: ['invalid_request', 'model_not_found', 'store_unavailable'],
  });
  app.get('/admin/models/:name/performance', performanceDoc, async (req) => {
    const { name } = params(req);
    const q = PerformanceQuery.safeParse(req.query ?? {});
    if (!q.success) throw validationError(q.error, 'query');
    const performance = o.performance;
    if (!performance)
      throw new ServiceError(
        'model_not_found',
        'the decision log is off (DECISION_LOG=false): no performance',
      );
    const since = q.data.since === undefined ? undefined : Date.parse(q.data.since);
    let report: Awaited<ReturnType<Performance['report']>>;
    try {
      report = await performance.report(name, since);
    } catch (err) {
      req.log.warn({ err }, 'decision log unavailable for the performance report');
      throw new ServiceError('store_unavailable', 'the decision log is unavailable; retry later');
    }
    const known = o.registry.serving().some((m) => m.name === name);
    if (!known && report.versions.length === 0)
      throw new ServiceError(
        'model_not_found',
        `no model ${name} serves here and none has recorded decisions`,
      );
    return report;
  });

  const shadowDoc = guarded({
    summary: 'Score every request with a version too, for comparison only',
    params: Params,
    body: VersionBody,
    responses: AFTER_CHANGE,
    errors: [...CHANGE_ERRORS, ...SHARED_ERRORS],
  });
  app.put('/admin/models/:name/shadow', shadowDoc, async (req) => {
    const { name } = params(req);
    const shadow = body(VersionBody, req);
    await change(req, 'shadow_set', { model: name, ...shadow }, () => o.fleet.setShadow(name, shadow));
    return summary(name);
  });

  const clearShadowDoc = guarded({
    summary: 'Stop the shadow',
    params: Params,
    responses: AFTER_CHANGE,
    errors: ['invalid_request', ...SHARED_ERRORS],
  });
  app.delete('/admin/models/:name/shadow', clearShadowDoc, async (req) => {
    const { name } = params(req);
    await change(req, 'shadow_clear', { model: name }, () => o.fleet.clearShadow(name));
    return summary(name);
  });
};
