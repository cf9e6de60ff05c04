/**
 * The OpenAPI document is generated from the routes Fastify registered and the error catalogue (issue 14): its
 * paths and methods are exactly the registered routes, with and without the admin API, and what a route actually
 * answers is in it — the status, and for an error the code listed under that status.
 */
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance, type InjectOptions, type LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config.js';
import { ERRORS } from '../../../src/domain/errors.js';
import { collectRoutes } from '../../../src/http/openapi/collect.js';
import { createService, type Service } from '../../../src/wiring/service.js';
import { failingStore } from '../../helpers/failing-store.js';
import { captureLogger } from '../../helpers/logger.js';
import { copyModelVersion } from '../../helpers/models.js';

const MODEL_DIR = 'test/fixtures/models';
const TOKEN = 'openapi-test-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };
const tx = (over: Record<string, unknown> = {}) => ({
  transaction_id: 'oa-1',
  timestamp: '2018-08-09T10:00:00Z',
  customer_id: 'C1',
  terminal_id: 'T1',
  amount: 42.5,
  ...over,
});

interface Operation {
  responses: Record<string, { content?: Record<string, { schema: ErrorBodySchema }> }>;
  security?: unknown;
}
interface ErrorBodySchema {
  properties: { error: { properties: { code: { enum: string[] } } } };
}
interface Document {
  paths: Record<string, Record<string, Operation>>;
  components?: { securitySchemes?: Record<string, { type: string; scheme: string }> };
}

/** `METHOD /path/:param` for each route in Fastify's own route tree, without its automatic HEAD routes. */
function registeredRoutes(app: FastifyInstance): string[] {
  const routes: string[] = [];
  const prefixes: string[] = [];
  for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
    const m = /^([│ ]*)[├└]── (\S+)(?: \(([^)]+)\))?$/.exec(line);
    if (!m) continue;
    const depth = m[1]!.length / 4;
    const path = (prefixes[depth - 1] ?? '') + m[2];
    prefixes[depth] = path;
    for (const method of m[3]?.split(', ') ?? []) if (method !== 'HEAD') routes.push(`${method} ${path}`);
  }
  return routes.sort();
}

/** `METHOD /path/:param` for each operation of the document. */
function documentedRoutes(doc: Document): string[] {
  return Object.entries(doc.paths)
    .flatMap(([path, ops]) =>
      Object.keys(ops).map((method) => `${method.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ':$1')}`),
    )
    .sort();
}

async function documentOf(s: Service): Promise<Document> {
  const r = await s.app.inject('/openapi.json');
  expect(r.statusCode).toBe(200);
  return r.json();
}

/** Sends the request and checks its answer is documented for `route` (`METHOD /path/{param}`); returns it. */
async function expectDocumented(
  s: Service,
  doc: Document,
  route: string,
  request: InjectOptions,
  status: number,
): Promise<LightMyRequestResponse> {
  const r = await s.app.inject(request);
  expect(r.statusCode, `${route}: ${r.body}`).toBe(status);
  const [method, path] = route.split(' ') as [string, string];
  const documented = doc.paths[path]?.[method.toLowerCase()]?.responses[String(status)];
  expect(documented, `${route} answered ${status}, which the document does not list`).toBeDefined();
  const error = status >= 400 ? (r.json() as { error?: { code: string } | string }).error : undefined;
  if (typeof error === 'string') {
    // The Open Inference Protocol's body: a message that starts with the code, which the description names.
    const code = /^(\w+): /.exec(error)?.[1];
    expect(code, `${route} ${status}: ${error}`).toBeDefined();
    expect((documented as { description: string }).description).toContain(`\`${code}\``);
    expect(ERRORS[code as keyof typeof ERRORS].status).toBe(status);
  }
  const code = typeof error === 'object' ? error.code : undefined;
  if (code) {
    const codes = documented!.content!['application/json']!.schema.properties.error.properties.code.enum;
    expect(codes, `${route} ${status}`).toContain(code);
    expect(ERRORS[code as keyof typeof ERRORS].status).toBe(status);
  }
  return r;
}

describe('the OpenAPI document without the admin API', () => {
  let s: Service;
  let doc: Document;
  beforeAll(async () => {
    // A degraded answer is not remembered, so a busy machine would turn the expected 409 into a fresh 200.
    s = await createService(loadConfig({ MODEL_DIR, LOG_LEVEL: 'silent', REQUEST_DEADLINE_MS: '10000' }), {
      logger: captureLogger(),
    });
    doc = await documentOf(s);
  });
  afterAll(() => s.close());

  it('lists exactly the routes Fastify registered', () => {
    const registered = registeredRoutes(s.app);
    expect(registered).toContain('POST /v1/score');
    expect(registered.some((r) => r.includes('/admin'))).toBe(false);
    // Without the admin token, the Open Inference Protocol's health routes only.
    expect(registered.filter((r) => r.includes('/v2')).sort()).toEqual([
      'GET /v2/health/live',
      'GET /v2/health/ready',
      'GET /v2/models/:name/ready',
      'GET /v2/models/:name/versions/:version/ready',
    ]);
    expect(documentedRoutes(doc)).toEqual(registered);
    expect(doc.components?.securitySchemes).toBeUndefined();
  });

  it('documents what /v1/score and /v1/score/batch answer, 409 included', async () => {
    const one = 'POST /v1/score';
    await expectDocumented(s, doc, one, { method: 'POST', url: '/v1/score', payload: tx() }, 200);
    await expectDocumented(
      s,
      doc,
      one,
      { method: 'POST', url: '/v1/score', payload: tx({ amount: 1 }) },
      409,
    );
    await expectDocumented(
      s,
      doc,
      one,
      { method: 'POST', url: '/v1/score', payload: tx({ amount: -1 }) },
      400,
    );
    const header = { 'x-request-deadline-ms': 'soon' };
    await expectDocumented(
      s,
      doc,
      one,
      { method: 'POST', url: '/v1/score', payload: tx(), headers: header },
      400,
    );
    const text = { 'content-type': 'text/plain' };
    await expectDocumented(
      s,
      doc,
      one,
      { method: 'POST', url: '/v1/score', payload: 'x', headers: text },
      415,
    );
    const huge = { ...tx(), pad: 'x'.repeat(2 * 1024 * 1024) };
    await expectDocumented(s, doc, one, { method: 'POST', url: '/v1/score', payload: huge }, 413);
    const batch = { transactions: [tx({ amount: 2 })] };
    await expectDocumented(
      s,
      doc,
      'POST /v1/score/batch',
      { method: 'POST', url: '/v1/score/batch', payload: batch },
      409,
    );
  });

  it('keeps /docs working', async () => {
    const docs = await s.app.inject('/docs');
    expect(docs.statusCode).toBe(200);
    expect(docs.body).toContain('POST /v1/score');
  });
});

describe('the OpenAPI document when things fail', () => {
  it('documents 503 on /v1/events and on /health/ready', async () => {
    const s = await createService(loadConfig({ MODEL_DIR, LOG_LEVEL: 'silent' }), {
      logger: captureLogger(),
      store: failingStore(),
    });
    try {
      const doc = await documentOf(s);
      const events = { events: [{ type: 'transaction', ...tx() }] };
      await expectDocumented(
        s,
        doc,
        'POST /v1/events',
        { method: 'POST', url: '/v1/events', payload: events },
        503,
      );
      await expectDocumented(s, doc, 'GET /health/ready', { url: '/health/ready' }, 503);
    } finally {
      await s.close();
    }
  });
});

describe('the OpenAPI document with the admin API', () => {
  let s: Service;
  let doc: Document;
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'openapi-models-'));
    await cp(MODEL_DIR, dir, { recursive: true });
    await writeFile(join(await copyModelVersion(dir, '2', '3'), 'lr.onnx'), 'not an onnx file');
    s = await createService(
      loadConfig({ MODEL_DIR: dir, ADMIN_TOKEN: TOKEN, MODEL_VERSION: '1', LOG_LEVEL: 'silent' }),
      { logger: captureLogger() },
    );
    doc = await documentOf(s);
  });
  afterAll(async () => {
    await s.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('lists exactly the routes Fastify registered, admin ones behind the bearer scheme', () => {
    const registered = registeredRoutes(s.app);
    expect(registered).toContain('PUT /admin/models/:name/canary');
    expect(documentedRoutes(doc)).toEqual(registered);
    expect(doc.components?.securitySchemes?.adminToken).toMatchObject({ type: 'http', scheme: 'bearer' });
    // The Open Inference Protocol's metadata and inference are behind the admin token, its health routes open.
    const oipGuarded = (path: string) =>
      path.startsWith('/v2') && !path.startsWith('/v2/health/') && !path.endsWith('/ready');
    expect(registered).toContain('POST /v2/models/:name/versions/:version/infer');
    for (const [path, ops] of Object.entries(doc.paths))
      for (const [method, op] of Object.entries(ops))
        expect(op.security !== undefined, `${method} ${path}`).toBe(
          path.startsWith('/admin') || oipGuarded(path),
        );
  });

  it('documents what the Open Inference Protocol routes answer, in its error body', async () => {
    const infer = 'POST /v2/models/{name}/versions/{version}/infer';
    const url = '/v2/models/fraudscore/versions/1/infer';
    const width = (await s.app.inject({ url: '/v2/models/fraudscore', headers: auth })).json().inputs[0]
      .shape[1] as number;
    const payload = {
      inputs: [{ name: 'input', shape: [1, width], datatype: 'FP32', data: new Array(width).fill(0) }],
    };
    await expectDocumented(s, doc, infer, { method: 'POST', url, payload }, 401);
    await expectDocumented(s, doc, infer, { method: 'POST', url, payload, headers: auth }, 200);
    const wrong = { inputs: [{ ...payload.inputs[0], shape: [1, width + 1] }] };
    await expectDocumented(s, doc, infer, { method: 'POST', url, payload: wrong, headers: auth }, 400);
    await expectDocumented(
      s,
      doc,
      infer,
      { method: 'POST', url: '/v2/models/fraudscore/versions/9/infer', payload, headers: auth },
      404,
    );
    const text = { ...auth, 'content-type': 'text/plain' };
    await expectDocumented(s, doc, infer, { method: 'POST', url, payload: 'x', headers: text }, 415);
    await expectDocumented(
      s,
      doc,
      'GET /v2/models/{name}/versions/{version}/ready',
      { url: '/v2/models/fraudscore/versions/9/ready' },
      503,
    );
    await expectDocumented(s, doc, 'GET /v2/health/ready', { url: '/v2/health/ready' }, 200);
    await expectDocumented(s, doc, 'GET /v2', { url: '/v2', headers: auth }, 200);
  });

  it('documents what the admin routes answer: 401, 403, 400, 404, 409, 422', async () => {
    const list = 'GET /admin/models';
    await expectDocumented(s, doc, list, { url: '/admin/models' }, 401);
    await expectDocumented(
      s,
      doc,
      list,
      { url: '/admin/models', headers: { authorization: 'Bearer no' } },
      403,
    );
    await expectDocumented(s, doc, list, { url: '/admin/models', headers: auth }, 200);
    const activate = 'POST /admin/models/{name}/activate';
    const url = '/admin/models/fraudscore/activate';
    await expectDocumented(
      s,
      doc,
      activate,
      { method: 'POST', url, headers: auth, payload: { version: 'x' } },
      400,
    );
    await expectDocumented(
      s,
      doc,
      activate,
      { method: 'POST', url, headers: auth, payload: { version: '9' } },
      404,
    );
    await expectDocumented(
      s,
      doc,
      activate,
      { method: 'POST', url, headers: auth, payload: { version: '3' } },
      422,
    );
    const rollback = { method: 'POST' as const, url: '/admin/models/fraudscore/rollback', headers: auth };
    await expectDocumented(s, doc, 'POST /admin/models/{name}/rollback', rollback, 409);
    const canary = {
      method: 'PUT' as const,
      url: '/admin/models/fraudscore/canary',
      headers: auth,
      payload: { version: '1', percent: 10 },
    };
    await expectDocumented(s, doc, 'PUT /admin/models/{name}/canary', canary, 409);
  });

  it('shows the admin routes on /docs', async () => {
    expect((await s.app.inject('/docs')).body).toContain('PUT /admin/models/{name}/canary');
  });
});

describe('collectRoutes', () => {
  it('refuses a route registered without its doc, so the document cannot miss one', async () => {
    const app = Fastify();
    collectRoutes(app);
    expect(() => app.get('/undocumented', async () => 'x')).toThrow(/GET \/undocumented has no OpenAPI doc/);
    await app.close();
  });
});
