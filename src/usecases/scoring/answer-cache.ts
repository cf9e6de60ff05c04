/** Remembers recent answers by transaction id so a retry gets the same answer, and a reused id with other content is caught. */
export class AnswerCache<T> {
  private readonly entries = new Map<string, { fingerprint: string; value: T }>();

  constructor(private readonly capacity: number) {}

  get(id: string, fingerprint: string): { hit: true; value: T } | { hit: false; conflict: boolean } {
    const e = this.entries.get(id);
    if (!e) return { hit: false, conflict: false };
    if (e.fingerprint !== fingerprint) return { hit: false, conflict: true };
    return { hit: true, value: e.value };
  }

  set(id: string, fingerprint: string, value: T): void {
    if (this.capacity <= 0) return;
    this.entries.delete(id);
    this.entries.set(id, { fingerprint, value });
    // Map iteration order is insertion order: the first key is the oldest.
    if (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value!);
  }
}
