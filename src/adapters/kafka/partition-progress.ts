/** A topic partition this worker consumes. */
export interface PartitionRef {
  readonly topic: string;
  readonly partition: number;
}

interface PartitionState extends PartitionRef {
  /** Messages behind the high watermark, as last seen (0 until a fetch says otherwise). */
  lag: number;
  /** Wall-clock ms of the last chunk applied, or of the assignment when none was yet. */
  appliedAt: number;
}

/**
 * Where each of a worker's partitions stands, in processing (wall-clock) time: how far behind, and when it
 * last applied events. Pure bookkeeping; the worker feeds it and reports from it.
 */
export class PartitionProgress {
  private readonly parts = new Map<string, PartitionState>();

  constructor(private readonly now: () => number) {}

  /**
   * The partitions the group now gives this worker (topic → partitions). Returns the ones no longer assigned
   * (forgotten here) and the new ones (applied "at" the assignment, so a partition that never applies shows).
   */
  assign(assignment: Readonly<Record<string, readonly number[]>>): {
    released: PartitionRef[];
    added: (PartitionRef & { appliedAt: number })[];
  } {
    const keep = new Set<string>();
    const added: (PartitionRef & { appliedAt: number })[] = [];
    for (const [topic, partitions] of Object.entries(assignment))
      for (const partition of partitions) {
        const k = key(topic, partition);
        keep.add(k);
        if (!this.parts.has(k)) added.push(this.state(topic, partition));
      }
    const released: PartitionRef[] = [];
    for (const [k, p] of this.parts)
      if (!keep.has(k)) {
        this.parts.delete(k);
        released.push({ topic: p.topic, partition: p.partition });
      }
    return {
      released,
      added: added.map(({ topic, partition, appliedAt }) => ({ topic, partition, appliedAt })),
    };
  }

  /**
   * The lag a fetch (or a refresh of the high watermark) shows. Returns the time it counts as applied at when
   * the partition was not known yet (a fetch before the assignment was seen), else undefined.
   */
  lag(topic: string, partition: number, lag: number): number | undefined {
    const known = this.parts.has(key(topic, partition));
    const p = this.state(topic, partition);
    p.lag = Math.max(0, lag);
    return known ? undefined : p.appliedAt;
  }

  /** A chunk was applied and committed; `lag` is what remains. Returns the time of it (wall-clock ms). */
  applied(topic: string, partition: number, lag: number): number {
    const p = this.state(topic, partition);
    p.lag = Math.max(0, lag);
    p.appliedAt = this.now();
    return p.appliedAt;
  }

  /**
   * This worker as a whole: its total lag, and when it last made progress: the oldest last application among
   * the partitions that lag (a partition that keeps up is as fresh as now).
   */
  snapshot(): { lag: number; progressAt: number; at: number } {
    const at = this.now();
    let lag = 0;
    let progressAt = at;
    for (const p of this.parts.values())
      if (p.lag > 0) {
        lag += p.lag;
        if (p.appliedAt < progressAt) progressAt = p.appliedAt;
      }
    return { lag, progressAt, at };
  }

  private state(topic: string, partition: number): PartitionState {
    const k = key(topic, partition);
    let p = this.parts.get(k);
    if (!p) {
      p = { topic, partition, lag: 0, appliedAt: this.now() };
      this.parts.set(k, p);
    }
    return p;
  }
}

const key = (topic: string, partition: number) => `${partition} ${topic}`;
