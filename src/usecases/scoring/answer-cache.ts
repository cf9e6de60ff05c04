import { BoundedMap } from '../../domain/bounded-map.js';

/** Remembers recent answers by transaction id so a retry gets the same answer, and a reused id with other content is caught. */
export class AnswerCache<T> {
  private readonly entries: BoundedMap<string, { fingerprint: string; value: T }>;

  constructor(private readonly capacity: number) {
    this.entries = new BoundedMap(capacity);
  }

  get(id: string, fingerprint: string): { hit: true; value: T } | { hit: false; conflict: boolean } {
    const e = this.entries.get(id);
    if (!e) return { hit: false, conflict: false };
    if (e.fingerprint !== fingerprint) return { hit: false, conflict: true };
    return { hit: true, value: e.value };
  }

  set(id: string, fingerprint: string, value: T): void {
    if (this.capacity <= 0) return;
    this.entries.set(id, { fingerprint, value });
  }
}
