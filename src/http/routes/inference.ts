import type { FastifyError, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { ServiceError } from '../../domain/errors.js';
import { ModelNameSchema, ModelVersionSchema } from '../../domain/models/names.js';
import { inferRows, loadedVersion } from '../../usecases/models/infer.js';
import type { LoadedVersion } from '../../usecases/models/loaded-version.js';
import type { ModelRegistry } from '../../usecases/models/registry.js';
import { requireBearer } from '../bearer.js';
import { answerOipError, validationError } from '../errors.js';
import {
  decodeRequest,
  encodeOutputs,
  InferRequestEnvelope,
  InferRequestSchema,
  InferResponseSchema,
  ModelMetadataSchema,
  metadataTensors,
  PLATFORM,
  ServerMetadataSchema,
  type TensorModel,
} from '../oip.js';
import { documented, type RouteDoc } from '../openapi/route-doc.js';
import type { TraceOf } from '../tracing.js';

export interface InferenceRoutesOptions {
  readonly registry: ModelRegistry;
  /** MODEL_NAME: server readiness means this model has an active version. */
  readonly model: string;
  /** True once shutdown began: readiness fails, as on /health/ready. */
  readonly draining: () => boolean;
  /** The build version, for the server metadata. */
  readonly version: string;
  /** ADMIN_TOKEN: metadata and inference exist only with it, behind it; the health routes are open. */
  readonly token?: string;
  /** Rows per inference request (BATCH_MAX_TRANSACTIONS). */
  readonly maxRows: number;
  readonly trace?: TraceOf;
}

const Params = z.object({ name: ModelNameSchema, version: ModelVersionSchema.optional() });
const Ready = z.object({ name: z.string(), ready: z.boolean() });

const tensorModel = (lv: LoadedVersion): TensorModel => ({
  inputs: lv.manifest.inputs,
  members: lv.manifest.members.map((m) => m.name),
});

/**
 * The Open Inference Protocol (REST, "V2") for model versions, under the /v2 prefix: health (open), server and model
 * metadata and inference (admin token). Inference scores feature vectors with a loaded version — the active one
 * when the URL names none — and nothing else: no feature store, no audit, no decision metrics, no drift. Errors
 * answer the protocol's `{ error }` body with the catalogue's status.
 */
export const inferenceRoutes: FastifyPluginAsync<InferenceRoutesOptions> = async (app, o) => {
  app.setErrorHandler((err: FastifyError, req, reply) => answerOipError(err, req, reply));
  app.setNotFoundHandler((req, reply) =>
    answerOipError(
      new ServiceError('not_found', `no route ${req.method} ${req.url.split('?')[0]}`),
      req,
      reply,
    ),
  );
  const params = (req: FastifyRequest) => {
    const p = Params.safeParse(req.params);
    if (!p.success) throw validationError(p.error, 'params');
    return p.data;
  };
  const open = (doc: Omit<RouteDoc, 'errorBody'>) => documented({ ...doc, errorBody: 'oip' });

  app.get(
    '/health/live',
    open({
      summary: 'Open Inference Protocol: server live',
      responses: { 200: { description: 'Live', schema: z.object({ live: z.literal(true) }) } },
      errors: [],
    }),
    async () => ({ live: true }),
  );

  const readyDoc = open({
    summary: `Open Inference Protocol: server ready (${o.model} has an active version and the process is not draining)`,
    responses: {
      200: { description: 'Ready', schema: z.object({ ready: z.literal(true) }) },
      503: { description: 'Not ready, or draining', schema: z.object({ ready: z.literal(false) }) },
    },
    errors: [],
  });
  app.get('/health/ready', readyDoc, async (_req, reply) => {
    const ready = !o.draining() && o.registry.active(o.model) !== undefined;
    return reply.code(ready ? 200 : 503).send({ ready });
  });

  const modelReady = (summary: string) =>
    open({
      summary,
      params: Params,
      responses: {
        200: { description: 'Loaded and serving', schema: Ready },
        503: { description: 'Not loaded, or draining', schema: Ready },
      },
      errors: ['invalid_request'],
    });
  const readyHandler = async (req: FastifyRequest, reply: FastifyReply) => {
    const p = params(req);
    let ready = !o.draining();
    try {
      loadedVersion(o.registry, p.name, p.version);
    } catch {
      ready = false;
    }
    return reply.code(ready ? 200 : 503).send({ name: p.name, ready });
  };
  app.get(
    '/models/:name/ready',
    modelReady('Open Inference Protocol: model ready (it has an active version)'),
    readyHandler,
  );
  app.get(
    '/models/:name/versions/:version/ready',
    modelReady('Open Inference Protocol: model version ready (it is loaded)'),
    readyHandler,
  );

  if (!o.token) return;
  const onRequest = requireBearer(o.token, 'admin');
  const guarded = (doc: Omit<RouteDoc, 'bearer' | 'errorBody'>) => ({
    ...documented({
      ...doc,
      bearer: 'admin',
      errorBody: 'oip',
      errors: ['unauthorized', 'forbidden', ...doc.errors],
    }),
    onRequest,
  });

  app.get(
    '/',
    {
      ...guarded({
        summary: 'Open Inference Protocol: server metadata',
        responses: { 200: { description: 'Name, version, extensions', schema: ServerMetadataSchema } },
        errors: [],
      }),
      prefixTrailingSlash: 'no-slash',
    },
    async () => ({ name: 'fraudscore', version: o.version, extensions: [] }),
  );

  const metadata = (summary: string) =>
    guarded({
      summary,
      params: Params,
      responses: {
        200: { description: 'Inputs, outputs and the loaded versions', schema: ModelMetadataSchema },
      },
      errors: ['invalid_request', 'not_loaded', 'no_active'],
    });
  const metadataHandler = async (req: FastifyRequest) => {
    const p = params(req);
    const lv = loadedVersion(o.registry, p.name, p.version);
    return {
      name: lv.name,
      versions: o.registry.loadedVersions(lv.name),
      platform: PLATFORM,
      ...metadataTensors(tensorModel(lv)),
      parameters: {
        version: lv.version,
        feature_set: lv.featureSet.id,
        combiner: lv.manifest.combiner.kind,
      },
    };
  };
  app.get(
    '/models/:name',
    metadata('Open Inference Protocol: model metadata (of its active version)'),
    metadataHandler,
  );
  app.get(
    '/models/:name/versions/:version',
    metadata('Open Inference Protocol: model version metadata'),
    metadataHandler,
  );

  const infer = (summary: string) =>
    guarded({
      summary,
      params: Params,
      body: InferRequestSchema,
      responses: {
        200: {
          description: 'The ensemble score and each member’s output per row',
          schema: InferResponseSchema,
        },
      },
      errors: ['invalid_request', 'not_loaded', 'no_active'],
    });
  const inferHandler = async (req: FastifyRequest) => {
    const p = params(req);
    const body = InferRequestEnvelope.safeParse(req.body);
    if (!body.success) throw validationError(body.error);
    const lv = loadedVersion(o.registry, p.name, p.version);
    const m = tensorModel(lv);
    const { rows, outputs } = decodeRequest(m, body.data, o.maxRows);
    const results = await inferRows(lv, rows, o.trace?.(req));
    return {
      model_name: lv.name,
      model_version: lv.version,
      id: body.data.id ?? req.id,
      parameters: { feature_set: lv.featureSet.id },
      outputs: encodeOutputs(m, results, outputs),
    };
  };
  app.post(
    '/models/:name/infer',
    infer(`Open Inference Protocol: score up to ${o.maxRows} feature vectors with the active version`),
    inferHandler,
  );
  app.post(
    '/models/:name/versions/:version/infer',
    infer(`Open Inference Protocol: score up to ${o.maxRows} feature vectors with a loaded version`),
    inferHandler,
  );
};
