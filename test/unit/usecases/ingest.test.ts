/**
 * The ingest use case's event-time check (issue 15), shared by the Kafka worker (`decodeMessages`, whose
 * refused list it dead-letters with `x-reason`) and POST /v1/events (`decodeTagged`).
 */
import { describe, expect, it } from 'vitest';
import { loadFeatureSets } from '../../../src/adapters/fs/feature-set-files.js';
import { MemoryFeatureStore } from '../../../src/adapters/memory/memory-store.js';
import { entityUnion } from '../../../src/domain/features/engine.js';
import { DAY_MS } from '../../../src/domain/features/time.js';
import type { Clock } from '../../../src/ports/clock.js';
import { Ingest } from '../../../src/usecases/ingest.js';

const entities = entityUnion([...loadFeatureSets('features').values()]);
const NOW = Date.parse('2018-08-02T12:00:00Z');
const at = (t: number): Clock => ({ now: () => t, monotonic: () => 0 });
const limit = { clock: at(NOW), maxFutureMs: 600_000 };
const json = (x: unknown) => Buffer.from(JSON.stringify(x));
const tx = (id: string, timestamp: string) => ({
  transaction_id: id,
  timestamp,
  customer_id: 'c',
  terminal_id: 't',
  amount: 1,
});
const label = (id: string, transaction_timestamp: string) => ({
  transaction_id: id,
  customer_id: 'c',
  terminal_id: 't',
  transaction_timestamp,
  is_fraud: true,
});
const message = 'must not be more than 600000 ms after the processing time (2018-08-02T12:00:00.000Z)';

describe('Ingest: events ahead of the processing clock', () => {
  const ingest = new Ingest({ store: new MemoryFeatureStore({ horizonMs: 40 * DAY_MS }), entities, limit });

  it('refuses Kafka transactions dated beyond the bound as future, next to invalid ones, each by index', () => {
    const batch = ingest.decodeMessages('transaction', [
      json(tx('ok', '2018-08-02T11:00:00Z')),
      json(tx('typo', '2081-08-02T11:00:00Z')),
      Buffer.from('{'),
      json(tx('edge', new Date(NOW + 600_000).toISOString())),
      json(tx('beyond', new Date(NOW + 600_001).toISOString())),
    ]);
    expect(batch.refused).toEqual([
      { index: 1, outcome: 'future', problems: [{ path: 'timestamp', message }] },
      {
        index: 2,
        outcome: 'invalid',
        problems: [{ path: '', message: expect.stringMatching(/^invalid JSON/) }],
      },
      { index: 4, outcome: 'future', problems: [{ path: 'timestamp', message }] },
    ]);
    expect(batch.spans).toEqual([2, 2]);
    expect(batch.events.map((e) => e.txId)).toEqual(['ok', 'ok', 'edge', 'edge']);
  });

  it('judges a label by its transaction_timestamp', () => {
    const batch = ingest.decodeMessages('label', [
      json({ ...label('l', '2081-08-02T11:00:00Z'), labeled_at: '2018-08-02T11:00:00Z' }),
      json({ ...label('m', '2018-08-02T11:00:00Z'), labeled_at: '2081-08-02T11:00:00Z' }),
    ]);
    expect(batch.refused).toEqual([
      { index: 0, outcome: 'future', problems: [{ path: 'transaction_timestamp', message }] },
    ]);
    expect(batch.events.map((e) => e.txId)).toEqual(['m', 'm']);
  });

  it('puts the problems of tagged events under events.<index>', () => {
    const batch = ingest.decodeTagged([
      { type: 'label', ...label('l', '2081-08-02T11:00:00Z') },
      { type: 'transaction', ...tx('t', '2081-08-02T11:00:00Z') },
    ]);
    expect(batch.refused).toEqual([
      { index: 0, outcome: 'future', problems: [{ path: 'events.0.transaction_timestamp', message }] },
      { index: 1, outcome: 'future', problems: [{ path: 'events.1.timestamp', message }] },
    ]);
    expect(batch.events).toEqual([]);
  });

  it('counts an event the store itself refuses as future, and leaves it out of the newest time', async () => {
    // The store's clock reads earlier than the check's (a clock stepped back between them).
    const store = new MemoryFeatureStore(
      { horizonMs: 40 * DAY_MS },
      { clock: at(NOW - DAY_MS), maxFutureMs: 0 },
    );
    const ingestBehind = new Ingest({ store, entities, limit });
    const batch = ingestBehind.decodeMessages('transaction', [
      json(tx('a', '2018-07-31T10:00:00Z')),
      json(tx('b', '2018-08-02T11:00:00Z')),
    ]);
    expect(batch.refused).toEqual([]);
    const { counts, newest } = await ingestBehind.apply(batch);
    expect(counts).toEqual({ applied: 1, duplicate: 0, late: 0, future: 1 });
    expect(newest).toBe(Date.parse('2018-07-31T10:00:00Z'));
  });
});
