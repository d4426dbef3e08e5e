/**
 * A least-recently-used map bounded by entry count and, optionally, by total weight (bytes of
 * thumbnails), so a day of hovering over thousands of images keeps memory flat.
 */
export interface LruCacheOptions<K, V> {
  maxEntries: number;
  maxWeight?: number;
  weigh?: (value: V, key: K) => number;
}

export class LruCache<K, V> {
  /** Map iteration order is recency: the first entry is the least recently used. */
  private readonly entries = new Map<K, { value: V; weight: number }>();
  private totalWeight = 0;

  constructor(private readonly options: LruCacheOptions<K, V>) {
    if (!(options.maxEntries >= 1)) throw new RangeError('maxEntries must be at least 1');
  }

  get size(): number {
    return this.entries.size;
  }

  get weight(): number {
    return this.totalWeight;
  }

  get(key: K): V | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry.value;
  }

  has(key: K): boolean {
    return this.entries.has(key);
  }

  set(key: K, value: V): void {
    this.delete(key);
    const weight = this.options.weigh?.(value, key) ?? 0;
    // Something heavier than the whole budget would only evict everything else and then itself.
    if (this.options.maxWeight !== undefined && weight > this.options.maxWeight) return;
    this.entries.set(key, { value, weight });
    this.totalWeight += weight;
    while (this.entries.size > this.options.maxEntries || (this.options.maxWeight !== undefined && this.totalWeight > this.options.maxWeight)) {
      this.delete(this.entries.keys().next().value as K);
    }
  }

  delete(key: K): boolean {
    const entry = this.entries.get(key);
    if (!entry) return false;
    this.entries.delete(key);
    this.totalWeight -= entry.weight;
    return true;
  }

  clear(): void {
    this.entries.clear();
    this.totalWeight = 0;
  }

  keys(): K[] {
    return [...this.entries.keys()];
  }
}
