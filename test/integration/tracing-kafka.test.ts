/**
 * Tracing across Kafka (issue 21), on the real broker: the feature worker continues the trace each message
 * carries in its `traceparent` header (one consumer span per such message, child of the producer's span; a
 * dead-lettered message keeps the trace), and each record on the decisions topic carries the `traceparent` of the
 * scoring span that decided it. Spans are read from the SDK's in-memory exporter.
 */
import { SpanKind } from '@opentelemetry/api';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { type Admin, Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadFeatureSets } from '../../src/adapters/fs/feature-set-files.js';
import { FeatureWorker } from '../../src/adapters/kafka/feature-worker.js';
import { ensureTopics } from '../../src/adapters/kafka/topics.js';
import { MemoryFeatureStore } from '../../src/adapters/memory/memory-store.js';
import { startOtelTracing } from '../../src/adapters/tracing/otel.js';
import { loadConfig } from '../../src/config.js';
import { entityUnion } from '../../src/domain/features/engine.js';
import { Ingest } from '../../src/usecases/ingest.js';
import { createService } from '../../src/wiring/service.js';
import { startTracing } from '../../src/wiring/tracing.js';
import { retentionFor } from '../helpers/features.js';
import { createTopics, readTopic, uniqueTopics } from '../helpers/kafka.js';
import { silentLogger } from '../helpers/logger.js';
import { requireKafka, uniqueName } from '../helpers/services.js';
import { waitFor } from '../helpers/wait.js';

const sets = [...loadFeatureSets('features').values()];
const entities = entityUnion(sets);
const limit = {
  clock: { now: () => Date.parse('2018-05-01T00:00:00Z'), monotonic: () => 0 },
  maxFutureMs: 600_000,
};
const trace = (n: number) => `${String(n).repeat(32)}`.slice(0, 32);
const span = (n: number) => `${String(n).repeat(16)}`.slice(0, 16);
const traceparent = (n: number) => `00-${trace(n)}-${span(n)}-01`;
const tx = (id: string) =>
  Buffer.from(
    JSON.stringify({
      transaction_id: id,
      timestamp: '2018-04-02T10:00:00Z',
      customer_id: 'cust-SECRET-1',
      terminal_id: 'term-SECRET-1',
      amount: 10,
    }),
  );

describe('traces through Kafka', () => {
  let kafka: Kafka;
  let admin: Admin;
  let brokers: string[];
  beforeAll(async () => {
    ({ brokers } = await requireKafka());
    kafka = new Kafka({ clientId: 'tracing-test', brokers, logLevel: logLevel.NOTHING });
    admin = kafka.admin();
    await admin.connect();
  });
  afterAll(async () => {
    await admin?.disconnect();
  });

  it('the worker continues the trace of each message that carries one, and the dead-letter topic keeps it', async () => {
    const topics = uniqueTopics('trace');
    await createTopics(admin, topics, 1);
    const exporter = new InMemorySpanExporter();
    const tracing = await startOtelTracing({
      exporters: [],
      protocol: 'http/protobuf',
      sampler: 'parentbased_always_on',
      samplerArg: 1,
      service: { version: 'test', instanceId: 'worker' },
      logger: silentLogger(),
      exporter,
    });
    const groupId = uniqueName('trace-group');
    const worker = new FeatureWorker({
      brokers,
      clientId: 'trace-worker',
      groupId,
      topics,
      ingest: new Ingest({ entities, store: new MemoryFeatureStore(retentionFor(sets), limit), limit }),
      logger: silentLogger(),
      tracer: tracing.tracer,
    });
    const producer = kafka.producer();
    try {
      await producer.connect();
      await producer.send({
        topic: topics.transactions,
        messages: [
          { key: 'cust-SECRET-1', value: tx('t1'), headers: { traceparent: traceparent(1) } },
          { key: 'cust-SECRET-1', value: tx('t2'), headers: { traceparent: traceparent(2) } },
          { key: 'cust-SECRET-1', value: tx('t3') },
          {
            key: 'cust-SECRET-1',
            value: Buffer.from('{"not": "a transaction"}'),
            headers: { traceparent: traceparent(3) },
          },
        ],
      });
      await worker.start();
      const [dead] = await readTopic(kafka, topics.deadLetter, 1);
      await waitFor(() => exporter.getFinishedSpans().length >= 3, 30_000, 'three consumer spans');

      const spans = exporter.getFinishedSpans();
      expect(spans.map((s) => s.name)).toEqual(new Array(3).fill(`${topics.transactions} process`));
      const byTrace = new Map(spans.map((s) => [s.spanContext().traceId, s]));
      expect([...byTrace.keys()].sort()).toEqual([trace(1), trace(2), trace(3)]);
      for (const n of [1, 2, 3]) {
        const s = byTrace.get(trace(n))!;
        expect(s.kind).toBe(SpanKind.CONSUMER);
        expect(s.parentSpanContext?.spanId).toBe(span(n));
        expect(s.attributes).toMatchObject({
          'messaging.system': 'kafka',
          'messaging.destination.name': topics.transactions,
          'messaging.destination.partition.id': '0',
          'messaging.consumer.group.name': groupId,
          'fraudscore.event.kind': 'transaction',
        });
      }
      expect(byTrace.get(trace(3))!.attributes['fraudscore.event.outcome']).toBe('invalid');
      expect(byTrace.get(trace(1))!.attributes['fraudscore.event.outcome']).toBeUndefined();
      // The dead-lettered message carries the trace on, from its consumer span.
      expect(dead!.headers.traceparent).toBe(
        `00-${trace(3)}-${byTrace.get(trace(3))!.spanContext().spanId}-01`,
      );
      expect(JSON.stringify(spans.map((s) => s.attributes))).not.toContain('SECRET');
    } finally {
      await producer.disconnect();
      await worker.stop();
      await tracing.shutdown();
      await admin.deleteTopics({ topics: Object.values(topics) }).catch(() => {});
    }
  });

  it('each decision record carries the traceparent of the scoring span that decided it', async () => {
    const topic = uniqueName('trace-decisions');
    await ensureTopics(admin, [{ topic, numPartitions: 1 }]);
    const exporter = new InMemorySpanExporter();
    const config = loadConfig({
      MODEL_DIR: 'test/fixtures/models',
      MODEL_VERSION: '1',
      REQUEST_DEADLINE_MS: '5000',
      KAFKA_BROKERS: brokers.join(','),
      KAFKA_TOPIC_DECISIONS: topic,
    });
    const tracing = await startTracing(config, {
      service: { version: 'test', instanceId: 'api' },
      logger: silentLogger(),
      exporter,
    });
    const s = await createService(config, { logger: silentLogger(), tracing });
    try {
      const r = await s.app.inject({
        method: 'POST',
        url: '/v1/score',
        headers: { traceparent: traceparent(4) },
        payload: JSON.parse(tx('decided-1').toString()),
      });
      expect(r.statusCode).toBe(200);
      const [record] = await readTopic(kafka, topic, 1);
      const scoring = exporter.getFinishedSpans().find((x) => x.name === 'fraudscore.score')!;
      expect(scoring.spanContext().traceId).toBe(trace(4));
      expect(record!.headers.traceparent).toBe(`00-${trace(4)}-${scoring.spanContext().spanId}-01`);
      expect(JSON.parse(record!.value!.toString())).toMatchObject({ transaction_id: 'decided-1' });
    } finally {
      await s.close();
      await tracing.shutdown();
      await admin.deleteTopics({ topics: [topic] }).catch(() => {});
    }
  });
});
