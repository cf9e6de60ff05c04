interface Entry<K, V> {
  readonly key: K;
  value: V;
  older: Entry<K, V> | undefined;
  newer: Entry<K, V> | undefined;
}

/**
 * A Map of at most `capacity` entries that drops the entry set longest ago; `set` on a present key makes it the
 * newest. The order is a linked list beside the Map, so eviction is O(1) and holds nothing dead. Two Map-only
 * ways fail under V8: `map.keys().next()` per eviction starts at the table's head, where deleted entries stay
 * until a rehash (15 µs per `set` at 20,000 entries, 11 → 29 µs and growing at 1,000,000, measured on Node 20);
 * one iterator kept for the map's life instead pins every table the map outgrows until it next advances.
 */
export class BoundedMap<K, V> {
  private readonly map = new Map<K, Entry<K, V>>();
  private oldest: Entry<K, V> | undefined;
  private newest: Entry<K, V> | undefined;

  constructor(readonly capacity: number) {}

  get size(): number {
    return this.map.size;
  }

  get(key: K): V | undefined {
    return this.map.get(key)?.value;
  }

  has(key: K): boolean {
    return this.map.has(key);
  }

  delete(key: K): boolean {
    const e = this.map.get(key);
    if (!e) return false;
    this.map.delete(key);
    this.unlink(e);
    return true;
  }

  set(key: K, value: V): void {
    const e = this.map.get(key);
    if (e) {
      e.value = value;
      if (e !== this.newest) {
        this.unlink(e);
        this.append(e);
      }
    } else {
      const fresh: Entry<K, V> = { key, value, older: undefined, newer: undefined };
      this.map.set(key, fresh);
      this.append(fresh);
    }
    while (this.map.size > this.capacity) this.delete(this.oldest!.key);
  }

  /** Entries from the oldest set to the newest. The entry just yielded may be deleted meanwhile; no other. */
  *entries(): IterableIterator<[K, V]> {
    for (let e = this.oldest; e; ) {
      const newer = e.newer;
      yield [e.key, e.value];
      e = newer;
    }
  }

  *keys(): IterableIterator<K> {
    for (const [key] of this.entries()) yield key;
  }

  private append(e: Entry<K, V>): void {
    e.older = this.newest;
    e.newer = undefined;
    if (this.newest) this.newest.newer = e;
    else this.oldest = e;
    this.newest = e;
  }

  private unlink(e: Entry<K, V>): void {
    if (e.older) e.older.newer = e.newer;
    else this.oldest = e.newer;
    if (e.newer) e.newer.older = e.older;
    else this.newest = e.older;
    e.older = undefined;
    e.newer = undefined;
  }
}
