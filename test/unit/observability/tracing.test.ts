/**
 * OpenTelemetry tracing (issue 21), checked with the SDK's in-memory exporter: the span tree of a score request
 * (server span ← scoring ← feature read, inference ← one span per member run, decision), its attributes (model
 * version, degraded reasons; never a card, customer, terminal, device or transaction id), the W3C `traceparent`
 * of the request continued, sampling; and, in child processes, that with OTEL_TRACES_EXPORTER unset no part of
 * the SDK is even loaded, while with it set spans reach an OTLP/HTTP endpoint.
 */
import { execFile } from 'node:child_process';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOtelTracing } from '../../../src/adapters/tracing/otel.js';
import { loadConfig } from '../../../src/config.js';
import type { TraceContext } from '../../../src/ports/tracer.js';
import { ModelRegistry } from '../../../src/usecases/models/registry.js';
import { createService, type Service, type ServiceOptions } from '../../../src/wiring/service.js';
import { startTracing, type Tracing } from '../../../src/wiring/tracing.js';
import { failingStore } from '../../helpers/failing-store.js';
import { silentLogger } from '../../helpers/logger.js';
import { FakeSource, fakeClock } from '../models/fakes.js';

const FIXTURES = 'test/fixtures/models';
const TRACE_ID = '0af7651916cd43dd8448eb211c80319c';
const CALLER_SPAN = 'b7ad6b7169203331';
const TRACEPARENT = `00-${TRACE_ID}-${CALLER_SPAN}-01`;

/** Identifiers that must never appear in a span in clear. */
const SECRET = 'SECRET';
const tx = (id = 'tx-SECRET-1', over: Record<string, unknown> = {}) => ({
  transaction_id: id,
  timestamp: '2018-08-09T10:00:00Z',
  customer_id: 'cust-SECRET-4111111111111111',
  terminal_id: 'term-SECRET-77',
  device_id: 'dev-SECRET-9',
  ip: '10.9.8.7',
  amount: 42.5,
  ...over,
});

interface Traced {
  readonly s: Service;
  readonly exporter: InMemorySpanExporter;
  readonly tracing: Tracing;
}

async function traced(env: Record<string, string> = {}, o: ServiceOptions = {}): Promise<Traced> {
  const exporter = new InMemorySpanExporter();
  const config = loadConfig({ MODEL_DIR: FIXTURES, MODEL_VERSION: '1', REQUEST_DEADLINE_MS: '5000', ...env });
  const tracing = await startTracing(config, {
    service: { version: 'test', instanceId: 'replica-1' },
    logger: silentLogger(),
    exporter,
  });
  const s = await createService(config, { logger: silentLogger(), tracing, ...o });
  return { s, exporter, tracing };
}

async function close(t: Traced) {
  await t.s.close();
  await t.tracing.shutdown();
}

const named = (spans: readonly ReadableSpan[], name: string) => spans.filter((s) => s.name === name);
const one = (spans: readonly ReadableSpan[], name: string) => {
  const found = named(spans, name);
  expect(found.map((s) => s.name)).toEqual([name]);
  return found[0]!;
};
const parentOf = (s: ReadableSpan) => s.parentSpanContext?.spanId;
const idOf = (s: ReadableSpan) => s.spanContext().spanId;

/** Every string an exported span carries: name, attributes, events and their attributes, links' attributes. */
function texts(s: ReadableSpan): string[] {
  const values = (a: Record<string, unknown> | undefined) =>
    Object.values(a ?? {}).flatMap((v) => (Array.isArray(v) ? v.map(String) : [String(v)]));
  return [
    s.name,
    ...values(s.attributes),
    ...s.events.flatMap((e) => [e.name, ...values(e.attributes)]),
    ...s.links.flatMap((l) => values(l.attributes)),
    ...values(s.resource.attributes as Record<string, unknown>),
  ];
}

describe('a traced score request', () => {
  let t: Traced;
  let spans: ReadableSpan[];
  beforeAll(async () => {
    t = await traced();
    const r = await t.s.app.inject({
      method: 'POST',
      url: '/v1/score',
      headers: { traceparent: TRACEPARENT, tracestate: 'vendor=1' },
      payload: tx(),
    });
    expect(r.statusCode).toBe(200);
    spans = t.exporter.getFinishedSpans();
  });
  afterAll(() => close(t));

  it('continues the caller’s trace: every span is under the traceparent’s trace id', () => {
    expect(spans.length).toBeGreaterThan(0);
    for (const s of spans) expect(s.spanContext().traceId, s.name).toBe(TRACE_ID);
    const server = one(spans, 'POST /v1/score');
    expect(parentOf(server)).toBe(CALLER_SPAN);
    expect(server.parentSpanContext?.isRemote).toBe(true);
    expect(server.spanContext().traceState?.get('vendor')).toBe('1');
  });

  it('is one server span with the scoring span under it, and under that the feature read, inference per member run and the decision', () => {
    const server = one(spans, 'POST /v1/score');
    const score = one(spans, 'fraudscore.score');
    const features = one(spans, 'fraudscore.features');
    const inference = one(spans, 'fraudscore.inference');
    const decision = one(spans, 'fraudscore.decision');
    const members = named(spans, 'fraudscore.member');
    expect(server.kind).toBe(SpanKind.SERVER);
    expect(parentOf(score)).toBe(idOf(server));
    for (const child of [features, inference, decision])
      expect(parentOf(child), child.name).toBe(idOf(score));
    // The fixture's version 1 has two members, each run once.
    expect(members.map((m) => m.attributes['fraudscore.model.member']).sort()).toEqual(['lr', 'mlp']);
    for (const m of members) expect(parentOf(m)).toBe(idOf(inference));
    expect(spans).toHaveLength(5 + members.length);
    // Children end before their parents — within 5 ms: each span anchors its own wall clock (the context is
    // passed explicitly, not through the SDK's context manager), so two spans' times can be skewed by a little.
    const ms = (t: readonly [number, number]) => t[0] * 1e3 + t[1] / 1e6;
    for (const child of [features, inference, decision])
      expect(ms(child.endTime), child.name).toBeLessThanOrEqual(ms(score.endTime) + 5);
  });

  it('names the model version, the decision and (here: no) degradation; HTTP attributes on the server span', () => {
    const score = one(spans, 'fraudscore.score');
    expect(score.attributes).toMatchObject({
      'fraudscore.transactions': 1,
      'fraudscore.model.name': 'fraudscore',
      'fraudscore.model.version': '1',
      'fraudscore.feature_set': 'transaction_v2',
      'fraudscore.degraded': false,
    });
    expect(score.attributes['fraudscore.decision']).toMatch(/^(approve|review|decline)$/);
    expect(score.attributes['fraudscore.degraded_reasons']).toBeUndefined();
    expect(one(spans, 'fraudscore.inference').attributes).toMatchObject({
      'fraudscore.model.version': '1',
      'fraudscore.rows': 1,
    });
    expect(one(spans, 'fraudscore.features').attributes).toMatchObject({
      'fraudscore.feature_store': 'memory',
    });
    expect(one(spans, 'POST /v1/score').attributes).toMatchObject({
      'http.request.method': 'POST',
      'http.route': '/v1/score',
      'url.path': '/v1/score',
      'http.response.status_code': 200,
    });
    expect(one(spans, 'fraudscore.score').resource.attributes).toMatchObject({
      'service.name': 'fraudscore',
      'service.version': 'test',
      'service.instance.id': 'replica-1',
    });
  });

  it('never carries a card, customer, terminal, device or transaction id, nor the ip', () => {
    const all = spans.flatMap(texts);
    expect(all.filter((v) => v.includes(SECRET) || v.includes('10.9.8.7'))).toEqual([]);
  });
});

describe('traced requests, other cases', () => {
  let t: Traced;
  beforeAll(async () => {
    t = await traced();
  });
  afterAll(() => close(t));

  it('starts a trace of its own without traceparent (and with a malformed one)', async () => {
    for (const headers of [{}, { traceparent: '00-zz-not-a-trace-01' }]) {
      t.exporter.reset();
      await t.s.app.inject({
        method: 'POST',
        url: '/v1/score',
        headers,
        payload: tx(`own-${Math.random()}`),
      });
      const server = one(t.exporter.getFinishedSpans(), 'POST /v1/score');
      expect(server.parentSpanContext).toBeUndefined();
      expect(server.spanContext().traceId).not.toBe(TRACE_ID);
    }
  });

  it('scores a batch in one inference span per version, one member span per member run', async () => {
    t.exporter.reset();
    const r = await t.s.app.inject({
      method: 'POST',
      url: '/v1/score/batch',
      headers: { traceparent: TRACEPARENT },
      payload: { transactions: [tx('b-SECRET-1'), tx('b-SECRET-2'), tx('b-SECRET-3')] },
    });
    expect(r.statusCode).toBe(200);
    const spans = t.exporter.getFinishedSpans();
    expect(one(spans, 'fraudscore.score').attributes['fraudscore.transactions']).toBe(3);
    expect(one(spans, 'fraudscore.inference').attributes['fraudscore.rows']).toBe(3);
    for (const m of named(spans, 'fraudscore.member')) expect(m.attributes['fraudscore.batch.rows']).toBe(3);
    expect(spans.flatMap(texts).filter((v) => v.includes(SECRET))).toEqual([]);
  });

  it('marks a 4xx server span with its status, not as failed; leaves probes and scrapes untraced', async () => {
    t.exporter.reset();
    const bad = await t.s.app.inject({ method: 'POST', url: '/v1/score', payload: tx('x', { amount: -1 }) });
    expect(bad.statusCode).toBe(400);
    await t.s.app.inject('/health/live');
    await t.s.app.inject('/metrics');
    await t.s.app.inject('/v2/health/ready');
    await t.s.app.inject('/v2/models/fraudscore/versions/1/ready');
    const spans = t.exporter.getFinishedSpans();
    expect(spans.map((s) => s.name)).toEqual(['POST /v1/score']);
    expect(spans[0]!.attributes['http.response.status_code']).toBe(400);
    expect(spans[0]!.status.code).not.toBe(SpanStatusCode.ERROR);
  });

  it('does not sample what the caller did not sample (parent-based sampling by default)', async () => {
    t.exporter.reset();
    const r = await t.s.app.inject({
      method: 'POST',
      url: '/v1/score',
      headers: { traceparent: `00-${TRACE_ID}-${CALLER_SPAN}-00` },
      payload: tx('unsampled-1'),
    });
    expect(r.statusCode).toBe(200);
    expect(t.exporter.getFinishedSpans()).toEqual([]);
  });
});

describe('a degraded answer', () => {
  it('names the degraded reasons on the scoring span and fails the feature read span', async () => {
    const t = await traced({}, { store: failingStore() });
    try {
      const r = await t.s.app.inject({
        method: 'POST',
        url: '/v1/score',
        headers: { traceparent: TRACEPARENT },
        payload: tx(),
      });
      expect(r.json()).toMatchObject({ degraded: true, degraded_reasons: ['features_unavailable'] });
      const spans = t.exporter.getFinishedSpans();
      expect(one(spans, 'fraudscore.score').attributes).toMatchObject({
        'fraudscore.degraded': true,
        'fraudscore.degraded_reasons': ['features_unavailable'],
        'fraudscore.model.version': '1',
      });
      const features = one(spans, 'fraudscore.features');
      expect(features.status.code).toBe(SpanStatusCode.ERROR);
      expect(features.attributes['fraudscore.degraded_reasons']).toEqual(['features_unavailable']);
      expect(spans.flatMap(texts).filter((v) => v.includes(SECRET))).toEqual([]);
    } finally {
      await close(t);
    }
  });
});

describe('sampling', () => {
  it.each([
    [{ OTEL_TRACES_SAMPLER: 'always_off' }, 0],
    [{ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '0' }, 0],
    [{ OTEL_TRACES_SAMPLER: 'always_on' }, 1],
    [{ OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0' }, 0],
  ])('%j: %d traced request(s) of one without traceparent', async (env, expected) => {
    const t = await traced(env);
    try {
      await t.s.app.inject({ method: 'POST', url: '/v1/score', payload: tx() });
      expect(named(t.exporter.getFinishedSpans(), 'POST /v1/score')).toHaveLength(expected);
    } finally {
      await close(t);
    }
  });

  it('keeps a sampled caller’s trace even when its own root ratio is 0 (parentbased_traceidratio)', async () => {
    const t = await traced({ OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0' });
    try {
      await t.s.app.inject({
        method: 'POST',
        url: '/v1/score',
        headers: { traceparent: TRACEPARENT },
        payload: tx(),
      });
      expect(one(t.exporter.getFinishedSpans(), 'fraudscore.score').spanContext().traceId).toBe(TRACE_ID);
    } finally {
      await close(t);
    }
  });
});

describe('member runs shared by several callers (micro-batching)', () => {
  it('are children of the first caller’s inference span and linked to the others’', async () => {
    const exporter = new InMemorySpanExporter();
    const tracing = await startOtelTracing({
      exporters: [],
      protocol: 'http/protobuf',
      sampler: 'always_on',
      samplerArg: 1,
      service: { version: 'test', instanceId: 'x' },
      logger: silentLogger(),
      exporter,
    });
    const registry = new ModelRegistry({
      source: new FakeSource(['1']),
      logger: silentLogger(),
      clock: fakeClock(),
      defaultModel: 'fraudscore',
      batching: { enabled: true, maxRows: 32, maxWaitMs: 5 },
      psiWindow: 100,
      tracer: tracing.tracer,
    });
    try {
      const lv = await registry.activate('fraudscore', '1');
      const a = tracing.tracer.start('caller a');
      const b = tracing.tracer.start('caller b');
      const row = Float32Array.of(1, 0, 2);
      // Submitted in the same tick: one run of two rows.
      const [ra, rb] = await Promise.all([lv.score(row, a.context), lv.score(row, b.context)]);
      expect(ra.score).toBe(rb.score);
      a.end();
      b.end();
      const spans = exporter.getFinishedSpans();
      const inferences = named(spans, 'fraudscore.inference');
      const underA = inferences.find((s) => parentOf(s) === a.context.spanId)!;
      const underB = inferences.find((s) => parentOf(s) === b.context.spanId)!;
      const members = named(spans, 'fraudscore.member');
      expect(members).toHaveLength(2);
      for (const m of members) {
        expect(parentOf(m)).toBe(idOf(underA));
        expect(m.links.map((l) => l.context.spanId)).toEqual([idOf(underB)]);
        expect(m.attributes).toMatchObject({ 'fraudscore.batch.rows': 2, 'fraudscore.batch.callers': 2 });
      }
      // Untraced scoring (shadow versions, say) starts no trace of its own.
      exporter.reset();
      await lv.score(row);
      expect(exporter.getFinishedSpans()).toEqual([]);
    } finally {
      await registry.close();
      await tracing.shutdown();
    }
  });
});

describe('the Tracer port on the SDK', () => {
  it('reads traceparent from HTTP headers and Kafka message headers (Buffers), and writes it back', async () => {
    const tracing = await startOtelTracing({
      exporters: [],
      protocol: 'http/protobuf',
      sampler: 'parentbased_always_on',
      samplerArg: 1,
      service: { version: 'test', instanceId: 'x' },
      logger: silentLogger(),
      exporter: new InMemorySpanExporter(),
    });
    try {
      const tracer = tracing.tracer;
      const fromHttp = tracer.extract({ traceparent: TRACEPARENT }) as TraceContext;
      const fromKafka = tracer.extract({ traceparent: Buffer.from(TRACEPARENT) }) as TraceContext;
      expect(fromHttp).toMatchObject({ traceId: TRACE_ID, spanId: CALLER_SPAN });
      expect(fromKafka).toMatchObject({ traceId: TRACE_ID, spanId: CALLER_SPAN });
      expect(tracer.extract({})).toBeUndefined();
      expect(tracer.extract({ traceparent: '00-00000000000000000000000000000000-b7ad6b7169203331-01' })).toBe(
        undefined,
      );
      const span = tracer.start('child', { parent: fromKafka });
      const headers: Record<string, string> = {};
      tracer.inject(span.context, headers);
      expect(headers.traceparent).toBe(`00-${TRACE_ID}-${span.context.spanId}-01`);
      span.end();
      span.end(); // idempotent
    } finally {
      await tracing.shutdown();
    }
  });
});

describe('configuration', () => {
  it('is off unless OTEL_TRACES_EXPORTER names an exporter, and OTEL_SDK_DISABLED wins', async () => {
    for (const env of [
      {},
      { OTEL_TRACES_EXPORTER: 'none' },
      { OTEL_TRACES_EXPORTER: 'otlp', OTEL_SDK_DISABLED: 'true' },
    ]) {
      const tracing = await startTracing(loadConfig(env), {
        service: { version: 'test', instanceId: 'x' },
        logger: silentLogger(),
      });
      expect(tracing.tracer, JSON.stringify(env)).toBeUndefined();
    }
  });

  it('refuses what it does not support: grpc, unknown exporters and samplers, a ratio out of [0, 1]', () => {
    expect(() => loadConfig({ OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' })).toThrow(/grpc is not supported/);
    expect(() => loadConfig({ OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'grpc' })).toThrow(
      /OTEL_EXPORTER_OTLP_TRACES_PROTOCOL/,
    );
    expect(() => loadConfig({ OTEL_TRACES_EXPORTER: 'otlp,zipkin' })).toThrow(/OTEL_TRACES_EXPORTER/);
    expect(() => loadConfig({ OTEL_TRACES_SAMPLER: 'jaeger_remote' })).toThrow(/OTEL_TRACES_SAMPLER/);
    expect(() => loadConfig({ OTEL_TRACES_SAMPLER_ARG: '1.5' })).toThrow(/OTEL_TRACES_SAMPLER_ARG/);
    expect(loadConfig({ OTEL_TRACES_EXPORTER: ' OTLP , console' }).OTEL_TRACES_EXPORTER).toEqual([
      'otlp',
      'console',
    ]);
  });
});

/** A collector stand-in: records each OTLP/HTTP request. */
async function collector() {
  const received: { path: string; type: string; body: Buffer }[] = [];
  const server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({
        path: req.url ?? '',
        type: String(req.headers['content-type']),
        body: Buffer.concat(chunks),
      });
      res.writeHead(200, { 'content-type': req.headers['content-type'] ?? 'application/json' });
      res.end(req.headers['content-type']?.includes('json') ? '{}' : '');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return { received, port, close: () => new Promise<void>((r) => server.close(() => r())) };
}

/** `fraudscore serve`'s wiring in a fresh process with `env`: which OpenTelemetry packages it loaded, and more. */
async function probe(env: Record<string, string>) {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--import', 'tsx', 'test/helpers/tracing-probe.ts'],
    {
      // A generous deadline: on a busy machine a 50 ms one skips inference, and its member spans with it.
      env: {
        PATH: process.env.PATH,
        MODEL_DIR: FIXTURES,
        PROBE_TRACEPARENT: TRACEPARENT,
        REQUEST_DEADLINE_MS: '10000',
        ...env,
      },
      timeout: 60_000,
    },
  );
  const line = stdout.split('\n').find((l) => l.startsWith('PROBE '));
  expect(line, stdout).toBeDefined();
  return JSON.parse(line!.slice('PROBE '.length)) as { status: number; traced: boolean; loaded: string[] };
}

describe('in a real process', () => {
  it('with OTEL_TRACES_EXPORTER unset, starts no OpenTelemetry SDK: none of it is even loaded', async () => {
    const p = await probe({});
    expect(p.status).toBe(200);
    expect(p.traced).toBe(false);
    // prom-client requires the API package (a no-op without an SDK); nothing else of OpenTelemetry is there.
    expect(p.loaded.filter((x) => x !== 'api')).toEqual([]);
  }, 60_000);

  it.each([
    ['http/protobuf', 'application/x-protobuf'],
    ['http/json', 'application/json'],
  ])(
    'with OTEL_TRACES_EXPORTER=otlp (%s), exports the spans to OTEL_EXPORTER_OTLP_ENDPOINT',
    async (protocol, type) => {
      const c = await collector();
      try {
        const p = await probe({
          OTEL_TRACES_EXPORTER: 'otlp',
          OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
          OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${c.port}`,
          OTEL_SERVICE_NAME: 'fraudscore-probe',
        });
        expect(p).toMatchObject({ status: 200, traced: true });
        expect(p.loaded).toContain('sdk-trace-base');
        expect(c.received.length).toBeGreaterThan(0);
        for (const r of c.received) {
          expect(r.path).toBe('/v1/traces');
          expect(r.type).toContain(type);
        }
        const body = Buffer.concat(c.received.map((r) => r.body));
        // The trace id: as hex in JSON, as 16 raw bytes in protobuf.
        const id = protocol === 'http/json' ? Buffer.from(TRACE_ID) : Buffer.from(TRACE_ID, 'hex');
        expect(body.includes(id)).toBe(true);
        expect(body.includes(Buffer.from('fraudscore-probe'))).toBe(true);
        expect(body.includes(Buffer.from('fraudscore.member'))).toBe(true);
        // The probe's transaction has SECRET in every id.
        expect(body.includes(Buffer.from(SECRET))).toBe(false);
      } finally {
        await c.close();
      }
    },
    60_000,
  );
});
