import type { Admin } from 'kafkajs';

export interface TopicSpec {
  readonly topic: string;
  /** -1: the broker's default. */
  readonly numPartitions: number;
}

/** Creates missing topics; existing ones are left as they are (partition counts are never shrunk). */
export async function ensureTopics(admin: Admin, specs: readonly TopicSpec[]): Promise<void> {
  const existing = new Set(await admin.listTopics());
  const missing = specs.filter((s) => !existing.has(s.topic));
  if (missing.length === 0) return;
  await admin.createTopics({
    waitForLeaders: true,
    topics: missing.map((s) => ({ topic: s.topic, numPartitions: s.numPartitions, replicationFactor: -1 })),
  });
}
