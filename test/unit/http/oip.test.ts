/**
 * The Open Inference Protocol over REST ("V2", KServe/Triton), issue 21. The client below is built from the
 * protocol's published JSON examples and schemas (kserve/open-inference-protocol, inference_rest.md and
 * open_inference_rest.yaml): the example inference request is sent as published, then in the same structure
 * with this model's tensors; every answer is checked against the published response objects.
 *
 * The point of the protocol here: for the same feature vector, /v2/.../infer returns the ensemble score that
 * /v1/score?explain=true returns, and the member outputs that make it (the manifest's combiner over them, and the
 * manifest's golden examples), for the fixture versions and the shipped one — scoring the vector only: no store
 * read, no audit record, no decision metric, no drift observation.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { MemoryFeatureStore } from '../../../src/adapters/memory/memory-store.js';
import { loadConfig } from '../../../src/config.js';
import { compileCombiner } from '../../../src/domain/models/ensemble.js';
import { type Manifest, ManifestSchema } from '../../../src/domain/models/manifest.js';
import { createService, type Service } from '../../../src/wiring/service.js';
import { generateTransactions } from '../../helpers/generate.js';
import { captureLogger, type LogLine } from '../../helpers/logger.js';

const FIXTURES = 'test/fixtures/models';
const TOKEN = 'oip-test-admin-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };

// ---- The protocol's published examples, as published ----------------------------------------------------------

/** inference_rest.md, "Inference Request Examples": a model with two inputs and one output. */
const SPEC_REQUEST = {
  id: '42',
  inputs: [
    { name: 'input0', shape: [2, 2], datatype: 'UINT32', data: [1, 2, 3, 4] },
    { name: 'input1', shape: [3], datatype: 'BOOL', data: [true] },
  ],
  outputs: [{ name: 'output0' }],
};
/** Its response. */
const SPEC_RESPONSE = {
  id: '42',
  outputs: [{ name: 'output0', shape: [3, 2], datatype: 'FP32', data: [1.0, 1.1, 2.0, 2.1, 3.0, 3.1] }],
};

// ---- The published response objects (open_inference_rest.yaml), as a client validates them (extra fields pass) -

const Parameters = z.record(z.string(), z.union([z.string(), z.number(), z.boolean()]));
const MetadataTensor = z.looseObject({
  name: z.string(),
  datatype: z.string(),
  shape: z.array(z.number().int()),
});
const MetadataModelResponse = z.looseObject({
  name: z.string(),
  versions: z.array(z.string()).optional(),
  platform: z.string(),
  inputs: z.array(MetadataTensor),
  outputs: z.array(MetadataTensor),
});
const MetadataServerResponse = z.looseObject({
  name: z.string(),
  version: z.string(),
  extensions: z.array(z.string()),
});
const ResponseOutput = z.looseObject({
  name: z.string(),
  shape: z.array(z.number().int()),
  datatype: z.string(),
  parameters: Parameters.optional(),
  data: z.array(z.unknown()),
});
const InferenceResponse = z.looseObject({
  model_name: z.string(),
  model_version: z.string().optional(),
  id: z.string().optional(),
  parameters: Parameters.optional(),
  outputs: z.array(ResponseOutput),
});
const ErrorResponse = z.object({ error: z.string() }).strict();

// ---- A small client --------------------------------------------------------------------------------------------

type Metadata = z.infer<typeof MetadataModelResponse>;
type Inference = z.infer<typeof InferenceResponse>;

const path = (name: string, version?: string) => `/v2/models/${name}${version ? `/versions/${version}` : ''}`;

function json<T>(r: LightMyRequestResponse, schema: z.ZodType<T>, status = 200): T {
  expect(r.statusCode, r.body).toBe(status);
  expect(r.headers['content-type']).toMatch(/^application\/json/);
  return schema.parse(r.json());
}

async function metadata(s: Service, name: string, version?: string): Promise<Metadata> {
  return json(await s.app.inject({ url: path(name, version), headers: auth }), MetadataModelResponse);
}

/**
 * The published example request, with this model's tensors: its one input as metadata describes it (name, FP32,
 * shape [n, inputs]), the rows row-major and flat, and every output it lists requested by name.
 */
function requestFor(md: Metadata, rows: readonly (readonly number[])[], id = SPEC_REQUEST.id) {
  const [input] = md.inputs;
  return {
    ...SPEC_REQUEST,
    id,
    inputs: [
      {
        name: input!.name,
        shape: [rows.length, input!.shape[1]!],
        datatype: input!.datatype,
        data: rows.flat(),
      },
    ],
    outputs: md.outputs.map((o) => ({ name: o.name })),
  };
}

async function infer(
  s: Service,
  name: string,
  version: string | undefined,
  body: object,
): Promise<Inference> {
  const r = await s.app.inject({
    method: 'POST',
    url: `${path(name, version)}/infer`,
    headers: auth,
    payload: body,
  });
  return json(r, InferenceResponse);
}

/** An output's data, one value per row. */
function tensor(res: Inference, name: string): number[] {
  const t = res.outputs.find((o) => o.name === name);
  expect(t, `output ${name}`).toBeDefined();
  expect(t!.shape[0]).toBe(t!.data.length);
  return t!.data as number[];
}

async function errorOf(r: LightMyRequestResponse, status: number): Promise<string> {
  return json(r, ErrorResponse, status).error;
}

/** Float32 precision: a couple of units in the last place of a float32. */
const close32 = (a: number, b: number) => Math.abs(a - b) <= 2.5e-7 * Math.max(1, Math.abs(b));

// ---- Fixtures ----------------------------------------------------------------------------------------------------

const iso = (t: number) => new Date(t).toISOString();
const history = generateTransactions({ seed: 21, days: 12, customers: 25, terminals: 10, perDay: 60 });
const transaction = (tx: (typeof history)[number]) => ({
  transaction_id: tx.id,
  timestamp: iso(tx.t),
  customer_id: tx.customer_id,
  terminal_id: tx.terminal_id,
  amount: tx.amount,
});

async function manifestOf(dir: string, version: string): Promise<Manifest> {
  return ManifestSchema.parse(
    JSON.parse(await readFile(join(dir, 'fraudscore', version, 'manifest.json'), 'utf8')),
  );
}

interface Scored {
  readonly score: number;
  readonly features: Record<string, number>;
  readonly model: { version: string };
}

/** A service over `dir` with the history applied: transactions have velocity features worth comparing. */
async function serviceWithHistory(dir: string, env: Record<string, string> = {}) {
  const store = new MemoryFeatureStore({ horizonMs: 60 * 86_400_000 });
  let reads = 0;
  const read = store.read.bind(store);
  store.read = (q) => {
    reads++;
    return read(q);
  };
  const log: LogLine[] = [];
  const s = await createService(
    loadConfig({ MODEL_DIR: dir, ADMIN_TOKEN: TOKEN, REQUEST_DEADLINE_MS: '10000', ...env }),
    { logger: captureLogger(log, 'info'), store },
  );
  const events = history.slice(0, -40).map((tx) => ({ type: 'transaction', ...transaction(tx) }));
  const applied = await s.app.inject({ method: 'POST', url: '/v1/events', payload: { events } });
  expect(applied.json()).toMatchObject({ rejected: [] });
  return { s, log, reads: () => reads };
}

/** /v1/score?explain=true for the last transactions of the history, one request each. */
async function scoreExplained(s: Service, n: number): Promise<Scored[]> {
  const out: Scored[] = [];
  for (const tx of history.slice(-n)) {
    const r = await s.app.inject({ method: 'POST', url: '/v1/score?explain=true', payload: transaction(tx) });
    expect(r.statusCode).toBe(200);
    const body = r.json();
    expect(body.degraded).toBe(false);
    out.push(body);
  }
  return out;
}

/** The explained features as rows in the order metadata gives (its input tensor's `parameters.columns`). */
function rowsOf(md: Metadata, scored: readonly Scored[]) {
  const columns = (md.inputs[0]!.parameters as { columns: string }).columns.split(',');
  expect(columns).toHaveLength(md.inputs[0]!.shape[1]!);
  return scored.map((r) => columns.map((c) => r.features[c]!));
}

/** The parity the issue asks for, for one version: /v2 infer against /v1/score?explain=true, member outputs included. */
async function expectParity(s: Service, dir: string, version: string, scored: readonly Scored[]) {
  const manifest = await manifestOf(dir, version);
  const md = await metadata(s, 'fraudscore', version);
  const rows = rowsOf(md, scored);
  const res = await infer(s, 'fraudscore', version, requestFor(md, rows, `parity-${version}`));
  expect(res).toMatchObject({ model_name: 'fraudscore', model_version: version, id: `parity-${version}` });
  const score = tensor(res, 'score');
  const members = manifest.members.map((m) => tensor(res, `member_${m.name}`));
  const combine = compileCombiner(manifest);
  scored.forEach((r, k) => {
    expect(r.model.version).toBe(version);
    // The same ensemble score as /v1/score for the same feature vector…
    // (a batch of rows and a lone row may round differently in the last float32 place)
    expect(close32(score[k]!, r.score), `row ${k}: ${score[k]} vs ${r.score}`).toBe(true);
    // …made of these member outputs: the version's combiner over them gives it.
    expect(close32(combine(members.map((m) => m[k]!)), r.score), `row ${k}`).toBe(true);
    for (const m of members) expect(m[k]).toBe(Math.fround(m[k]!));
  });
  // And the member outputs are the ones the manifest publishes for its golden inputs.
  const golden = await infer(
    s,
    'fraudscore',
    version,
    requestFor(
      md,
      manifest.golden.map((g) => g.inputs),
    ),
  );
  manifest.golden.forEach((g, k) => {
    manifest.members.forEach((m, i) =>
      expect(Math.abs(tensor(golden, `member_${m.name}`)[k]! - g.members[i]!)).toBeLessThanOrEqual(1e-5),
    );
    expect(Math.abs(tensor(golden, 'score')[k]! - g.score)).toBeLessThanOrEqual(1e-5);
  });
  return { md, rows, res };
}

// ---- Tests -------------------------------------------------------------------------------------------------------

describe('the Open Inference Protocol on the fixture versions', () => {
  let s: Service;
  let log: LogLine[];
  let reads: () => number;
  let scored: Scored[];
  let md: Metadata;
  let rows: number[][];
  beforeAll(async () => {
    ({ s, log, reads } = await serviceWithHistory(FIXTURES, {
      MODEL_VERSION: '1',
      BATCH_MAX_TRANSACTIONS: '50',
    }));
    scored = await scoreExplained(s, 12);
    md = await metadata(s, 'fraudscore', '1');
    rows = rowsOf(md, scored);
  }, 60_000);
  afterAll(() => s.close());

  it('answers health, readiness and server metadata as the protocol publishes them', async () => {
    expect(json(await s.app.inject('/v2/health/live'), z.object({ live: z.literal(true) }))).toEqual({
      live: true,
    });
    expect(json(await s.app.inject('/v2/health/ready'), z.object({ ready: z.boolean() }))).toEqual({
      ready: true,
    });
    const ready = z.object({ name: z.string(), ready: z.boolean() });
    expect(json(await s.app.inject('/v2/models/fraudscore/ready'), ready)).toEqual({
      name: 'fraudscore',
      ready: true,
    });
    expect(json(await s.app.inject('/v2/models/fraudscore/versions/1/ready'), ready)).toEqual({
      name: 'fraudscore',
      ready: true,
    });
    expect(json(await s.app.inject('/v2/models/fraudscore/versions/2/ready'), ready, 503)).toEqual({
      name: 'fraudscore',
      ready: false,
    });
    expect(json(await s.app.inject({ url: '/v2', headers: auth }), MetadataServerResponse)).toMatchObject({
      name: 'fraudscore',
      extensions: [],
    });
  });

  it('describes a version: one FP32 input of shape [-1, inputs] (its columns in order), the score and each member', async () => {
    const manifest = await manifestOf(FIXTURES, '1');
    expect(md).toMatchObject({
      name: 'fraudscore',
      versions: ['1'],
      platform: 'onnx_onnxv1',
      inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, manifest.inputs.length] }],
      outputs: [
        { name: 'score', datatype: 'FP64', shape: [-1] },
        ...manifest.members.map((m) => ({ name: `member_${m.name}`, datatype: 'FP32', shape: [-1] })),
      ],
    });
    expect((md.inputs[0]!.parameters as { columns: string }).columns).toBe(manifest.inputs.join(','));
    // Without a version: the active one.
    expect(await metadata(s, 'fraudscore')).toEqual(md);
  });

  it('returns for each feature vector the score of /v1/score?explain=true, and the member outputs that make it', async () => {
    await expectParity(s, FIXTURES, '1', scored);
    // The active version when the URL names none.
    const res = await infer(s, 'fraudscore', undefined, requestFor(md, rows));
    expect(res.model_version).toBe('1');
    expect(tensor(res, 'score')).toEqual(scored.map((r) => r.score));
  });

  it('does the same for another loaded version, and scores nothing but the vectors: no store read, audit, decision or drift', async () => {
    const load = await s.app.inject({
      method: 'POST',
      url: '/admin/models/fraudscore/versions/2/load',
      headers: auth,
    });
    expect(load.statusCode).toBe(200);
    const decisions = log.filter((l) => l.audit === 'decision').length;
    const metricsBefore = (await s.app.inject('/metrics')).body;
    const readsBefore = reads();
    const active = s.registry.active()!;
    const driftBefore = active.drift.snapshot()?.observations ?? 0;

    const v2 = await infer(s, 'fraudscore', '2', requestFor(await metadata(s, 'fraudscore', '2'), rows));
    const v1 = await infer(s, 'fraudscore', '1', requestFor(md, rows));
    expect(v2.model_version).toBe('2');
    // Two versions on the same inputs: what the protocol is for here.
    expect(tensor(v2, 'score')).not.toEqual(tensor(v1, 'score'));

    expect(reads()).toBe(readsBefore);
    expect(log.filter((l) => l.audit === 'decision').length).toBe(decisions);
    const counted = (text: string, name: string) =>
      text
        .split('\n')
        .filter((l) => l.startsWith(name))
        .map((l) => Number(l.split(' ').at(-1)))
        .reduce((a, b) => a + b, 0);
    const metricsAfter = (await s.app.inject('/metrics')).body;
    for (const name of ['fraudscore_decisions_total', 'fraudscore_score_count'])
      expect(counted(metricsAfter, name), name).toBe(counted(metricsBefore, name));
    expect(active.drift.snapshot()?.observations ?? 0).toBe(driftBefore);

    // Version 2 against /v1/score once it is the active one.
    const activate = await s.app.inject({
      method: 'POST',
      url: '/admin/models/fraudscore/activate',
      headers: auth,
      payload: { version: '2' },
    });
    expect(activate.statusCode).toBe(200);
    const again = history.slice(-12).map((tx) => ({ ...transaction(tx), transaction_id: `${tx.id}-v2` }));
    const scored2: Scored[] = [];
    for (const tx of again) {
      const r = await s.app.inject({ method: 'POST', url: '/v1/score?explain=true', payload: tx });
      scored2.push(r.json());
    }
    await expectParity(s, FIXTURES, '2', scored2);
  });

  it('takes the same vectors as one tensor per input, nested data, or FP64, and returns only the outputs asked for', async () => {
    const manifest = await manifestOf(FIXTURES, '1');
    const base = await infer(s, 'fraudscore', '1', requestFor(md, rows));
    const perInput = {
      id: 'per-input',
      inputs: manifest.inputs.map((name, j) => ({
        name,
        shape: [rows.length, 1],
        datatype: 'FP32',
        data: rows.map((r) => r[j]),
      })),
    };
    const byName = await infer(s, 'fraudscore', '1', perInput);
    expect(byName.outputs).toEqual(base.outputs);
    const nested = {
      inputs: [{ name: 'input', shape: [rows.length, rows[0]!.length], datatype: 'FP64', data: rows }],
    };
    expect((await infer(s, 'fraudscore', '1', nested)).outputs).toEqual(base.outputs);
    const onlyScore = await infer(s, 'fraudscore', '1', {
      ...requestFor(md, rows),
      outputs: [{ name: 'score' }],
    });
    expect(onlyScore.outputs.map((o) => o.name)).toEqual(['score']);
    // Without an id, the HTTP request id answers for it.
    const { id: _, ...anonymous } = requestFor(md, rows);
    const res = await s.app.inject({
      method: 'POST',
      url: '/v2/models/fraudscore/infer',
      headers: { ...auth, 'x-request-id': 'req-7' },
      payload: anonymous,
    });
    expect(json(res, InferenceResponse).id).toBe('req-7');
  });

  it('answers the published example request with the protocol’s error object, naming each problem', async () => {
    const r = await s.app.inject({
      method: 'POST',
      url: '/v2/models/fraudscore/infer',
      headers: auth,
      payload: SPEC_REQUEST,
    });
    const error = await errorOf(r, 400);
    expect(error).toMatch(/^invalid_request: /);
    for (const problem of [
      /outputs\.0\.name: no output output0/,
      /inputs\.0\.name: input0 is not an input/,
      /inputs\.0\.datatype: must be FP32/,
      /inputs\.1\.data\.0: true: elements must be numbers/,
    ])
      expect(error).toMatch(problem);
    // The published response, for its part, is a valid inference response object.
    expect(InferenceResponse.omit({ model_name: true }).parse(SPEC_RESPONSE)).toEqual(SPEC_RESPONSE);
  });

  it('refuses what does not fit the version, with the catalogue’s status and the protocol’s body', async () => {
    const width = rows[0]!.length;
    const post = (url: string, payload: object, headers: Record<string, string> = auth) =>
      s.app.inject({ method: 'POST', url, headers, payload });
    const url = '/v2/models/fraudscore/versions/1/infer';
    const one = (over: Record<string, unknown>) => ({
      inputs: [{ name: 'input', shape: [1, width], datatype: 'FP32', data: rows[0], ...over }],
    });
    const cases: [object, RegExp][] = [
      [one({ shape: [1, width - 1] }), new RegExp(`inputs\\.0\\.shape: must be \\[n, ${width}\\]`)],
      [one({ data: rows[0]!.slice(1) }), new RegExp(`inputs\\.0\\.data: holds ${width - 1} values`)],
      [one({ data: [...rows[0]!.slice(1), 1e39] }), /inputs\.0\.data\.\d+: 1e\+39 is beyond float32 range/],
      [one({ datatype: 'INT64' }), /inputs\.0\.datatype: must be FP32/],
      [
        {
          inputs: [
            { name: 'input', shape: [51, width], datatype: 'FP32', data: new Array(51 * width).fill(0) },
          ],
        },
        /must hold 1 to 50 rows, got 51/,
      ],
      [
        { inputs: [{ name: 'TX_AMOUNT', shape: [1], datatype: 'FP32', data: [1] }] },
        /inputs: missing TX_DURING_WEEKEND/,
      ],
      [{ inputs: [] }, /inputs/],
      [{}, /inputs/],
    ];
    for (const [payload, problem] of cases)
      expect(await errorOf(await post(url, payload), 400)).toMatch(problem);
    expect(await errorOf(await post('/v2/models/fraudscore/versions/9/infer', one({})), 404)).toMatch(
      /^not_loaded: fraudscore@9 is not loaded/,
    );
    expect(await errorOf(await post('/v2/models/nomodel/infer', one({})), 409)).toMatch(/^no_active: /);
    expect(await errorOf(await post('/v2/models/Bad!/infer', one({})), 400)).toMatch(
      /^invalid_request: .*params\.name/,
    );
    expect(await errorOf(await post(url, one({}), {}), 401)).toMatch(/^unauthorized: /);
    expect(await errorOf(await post(url, one({}), { authorization: 'Bearer wrong' }), 403)).toMatch(
      /^forbidden: /,
    );
    expect(await errorOf(await s.app.inject({ url: '/v2/models/fraudscore' }), 401)).toMatch(/^unauthorized/);
    expect(
      await errorOf(await s.app.inject({ url: '/v2/models/fraudscore/versions/9', headers: auth }), 404),
    ).toMatch(/^not_loaded/);
    expect(
      await errorOf(
        await s.app.inject({
          method: 'POST',
          url,
          headers: { ...auth, 'content-type': 'application/json' },
          payload: '{',
        }),
        400,
      ),
    ).toMatch(/^invalid_json: /);
    expect(await errorOf(await s.app.inject({ url: '/v2/nothing' }), 404)).toMatch(/^not_found: /);
  });
});

describe('the Open Inference Protocol on the shipped version', () => {
  it('returns the score of /v1/score?explain=true and the golden member outputs', async () => {
    const { s } = await serviceWithHistory('models');
    try {
      const scored = await scoreExplained(s, 8);
      const version = scored[0]!.model.version;
      expect(version).toBe('1');
      await expectParity(s, 'models', version, scored);
    } finally {
      await s.close();
    }
  }, 60_000);
});

describe('the Open Inference Protocol without the admin token', () => {
  it('keeps its health routes (open, like /health/*) and has no metadata or inference', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'oip-empty-'));
    const s = await createService(loadConfig({ MODEL_DIR: dir }), { logger: captureLogger([], 'silent') });
    try {
      expect((await s.app.inject('/v2/health/live')).statusCode).toBe(200);
      // No model version at all: not ready.
      expect(json(await s.app.inject('/v2/health/ready'), z.object({ ready: z.boolean() }), 503)).toEqual({
        ready: false,
      });
      expect(
        json(await s.app.inject('/v2/models/fraudscore/ready'), z.object({ ready: z.boolean() }), 503).ready,
      ).toBe(false);
      for (const url of ['/v2', '/v2/models/fraudscore', '/v2/models/fraudscore/infer'])
        expect(
          await errorOf(await s.app.inject({ method: url.endsWith('infer') ? 'POST' : 'GET', url }), 404),
        ).toMatch(/^not_found: /);
    } finally {
      await s.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
