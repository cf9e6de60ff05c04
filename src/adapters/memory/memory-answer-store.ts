import { BoundedMap } from '../../domain/bounded-map.js';
import type { AnswerEntry, AnswerStore, Claim } from '../../ports/answer-store.js';
import type { Clock } from '../../ports/clock.js';

interface Entry {
  readonly fingerprint: string;
  readonly answer?: string;
  readonly expires: number;
}

/** Answers of one process (or of replicas sharing the object in a test); expired entries go on access and in sweeps. */
export class MemoryAnswerStore implements AnswerStore {
  private readonly entries: BoundedMap<string, Entry>;
  private sinceSweep = 0;

  constructor(
    private readonly clock: Clock,
    /** Entries kept at most; the oldest go first. */
    capacity = 1_000_000,
  ) {
    this.entries = new BoundedMap(capacity);
  }

  async claim(
    entries: readonly { id: string; fingerprint: string }[],
    pendingTtlMs: number,
  ): Promise<Claim[]> {
    return entries.map(({ id, fingerprint }) => {
      const held = this.live(id);
      if (held) return held;
      this.put(id, { fingerprint, expires: this.clock.now() + pendingTtlMs });
      return { state: 'claimed' };
    });
  }

  async complete(entries: readonly AnswerEntry[], ttlMs: number): Promise<void> {
    for (const { id, fingerprint, answer } of entries) {
      const e = this.entries.get(id);
      if (e && e.answer === undefined && e.fingerprint === fingerprint && e.expires > this.clock.now())
        this.put(id, { fingerprint, answer, expires: this.clock.now() + ttlMs });
    }
  }

  async release(id: string, fingerprint: string): Promise<void> {
    const e = this.entries.get(id);
    if (e && e.answer === undefined && e.fingerprint === fingerprint) this.entries.delete(id);
  }

  async peek(id: string): Promise<Claim | undefined> {
    return this.live(id);
  }

  private live(id: string): Claim | undefined {
    const e = this.entries.get(id);
    if (!e) return undefined;
    if (e.expires <= this.clock.now()) {
      this.entries.delete(id);
      return undefined;
    }
    return e.answer === undefined
      ? { state: 'pending', fingerprint: e.fingerprint }
      : { state: 'answered', fingerprint: e.fingerprint, answer: e.answer };
  }

  private put(id: string, e: Entry): void {
    this.entries.set(id, e);
    if (++this.sinceSweep >= 10_000) this.sweep();
  }

  private sweep(): void {
    this.sinceSweep = 0;
    const now = this.clock.now();
    for (const [id, e] of this.entries.entries()) if (e.expires <= now) this.entries.delete(id);
  }
}
