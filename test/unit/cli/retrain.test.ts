import { describe, expect, it } from 'vitest';
import { help, run } from '../../../src/cli/retrain.js';
import { UsageError } from '../../../src/cli/usage.js';

describe('fraudscore retrain arguments', () => {
  it.each([
    [[], /needs --input or --from-kafka/],
    [['--from-kafka', '-i', 'x.csv'], /--input or --from-kafka, not both/],
    [['--from-kafka', 'x.csv'], /--input or --from-kafka, not both/],
    [['--from-kafka', '--until', '2018-5-1'], /--until must be YYYY-MM-DD/],
  ])('refuses %j', async (argv, message) => {
    const saved = process.env.KAFKA_BROKERS;
    process.env.KAFKA_BROKERS = '127.0.0.1:1';
    try {
      const err = await run(argv).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UsageError);
      expect((err as Error).message).toMatch(message);
    } finally {
      if (saved === undefined) delete process.env.KAFKA_BROKERS;
      else process.env.KAFKA_BROKERS = saved;
    }
  });

  it('needs KAFKA_BROKERS for --from-kafka', async () => {
    const saved = process.env.KAFKA_BROKERS;
    delete process.env.KAFKA_BROKERS;
    try {
      await expect(run(['--from-kafka'])).rejects.toThrow(/--from-kafka needs KAFKA_BROKERS/);
    } finally {
      if (saved !== undefined) process.env.KAFKA_BROKERS = saved;
    }
  });

  it('documents --from-kafka', () => {
    expect(help).toContain('fraudscore retrain --from-kafka');
    expect(help).toMatch(/--from-kafka\s+read the history from KAFKA_TOPIC_TRANSACTIONS/);
  });
});
