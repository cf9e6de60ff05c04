/**
 * The decisions producer while the broker is away (nothing listens on the port): records wait in a bounded
 * queue; beyond the bound and at shutdown they are counted as dropped and logged, never silently lost.
 */
import { describe, expect, it } from 'vitest';
import { KafkaDecisionSink } from '../../../src/adapters/kafka/decision-sink.js';
import type { DecisionRecord } from '../../../src/domain/scoring/decision-record.js';
import { captureLogger, type LogLine } from '../../helpers/logger.js';
import { freePort } from '../../helpers/net.js';

const record = (i: number): DecisionRecord => ({
  transaction_id: `t${i}`,
  customer_id: `c${i}`,
  model: 'fraudscore',
  model_version: '1',
  score: 0.1,
  decision: 'approve',
  reasons: [],
  degraded: false,
});

describe('KafkaDecisionSink with the broker away', () => {
  it('keeps what fits, counts and logs what it drops, and does not hang the shutdown', async () => {
    const logs: LogLine[] = [];
    const dropped: number[] = [];
    const sink = new KafkaDecisionSink({
      brokers: [`127.0.0.1:${await freePort()}`],
      clientId: 'decision-sink-test',
      topic: 'decisions',
      logger: captureLogger(logs, 'warn'),
      maxQueue: 5,
      onDropped: (n) => dropped.push(n),
      retryDelayMs: { min: 10, max: 50 },
    });
    sink.publish([1, 2, 3].map(record));
    sink.publish([4, 5, 6, 7, 8].map(record));
    expect(dropped).toEqual([3]);
    await sink.close(200);
    // The five held records could not be sent before the shutdown's grace ran out.
    expect(dropped).toEqual([3, 5]);
    expect(logs.filter((l) => l.msg === 'decision audit records dropped').map((l) => l.dropped)).toEqual([
      3, 5,
    ]);
  }, 20_000);
});
