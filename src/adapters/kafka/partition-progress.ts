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
  /** The next offset to apply, once a batch has shown it. */
  position: bigint | undefined;
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
   * A fetch: the next offset to apply and the high watermark. Returns the lag, and the time the partition
   * counts as applied at when it was not known yet (a fetch before the assignment was seen).
   */
  fetched(
    topic: string,
    partition: number,
    position: bigint,
    highWatermark: bigint,
  ): {
    lag: number;
    added: number | undefined;
  } {
    const known = this.parts.has(key(topic, partition));
    const p = this.state(topic, partition);
    p.position = position;
    return { lag: this.highWatermark(p, highWatermark), added: known ? undefined : p.appliedAt };
  }

  /** A newer high watermark for a partition whose position is known (from the brokers); returns its lag. */
  refreshed(topic: string, partition: number, highWatermark: bigint): number | undefined {
    const p = this.parts.get(key(topic, partition));
    return p?.position === undefined ? undefined : this.highWatermark(p, highWatermark);
  }

  /** Partitions whose position is known, i.e. whose lag a high watermark tells. */
  positioned(): PartitionRef[] {
    return [...this.parts.values()]
      .filter((p) => p.position !== undefined)
      .map(({ topic, partition }) => ({ topic, partition }));
  }

  /**
   * A chunk was applied and committed: `next` is the new position, `highWatermark` the fetch's. Returns the lag
   * that remains and the time of it (wall-clock ms).
   */
  applied(
    topic: string,
    partition: number,
    next: bigint,
    highWatermark: bigint,
  ): { lag: number; at: number } {
    const p = this.state(topic, partition);
    p.position = next;
    p.appliedAt = this.now();
    return { lag: this.highWatermark(p, highWatermark), at: p.appliedAt };
  }

  private highWatermark(p: PartitionState, highWatermark: bigint): number {
    p.lag = Math.max(0, Number(highWatermark - p.position!));
    return p.lag;
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
      p = { topic, partition, lag: 0, appliedAt: this.now(), position: undefined };
      this.parts.set(k, p);
    }
    return p;
  }
}

const key = (topic: string, partition: number) => `${partition} ${topic}`;
