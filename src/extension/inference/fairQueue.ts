/**
 * Requests wait in lanes (one per hover burst, panel or folder scan). Within a lane they leave in
 * arrival order; across lanes the queue takes turns, so a 10,000-image scan cannot make a hover
 * wait for all of it.
 */
export class FairQueue<T> {
  /** Map iteration order is the rotation: a lane that was just served moves to the back. */
  private readonly lanes = new Map<string, T[]>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  enqueue(lane: string, item: T): void {
    const items = this.lanes.get(lane);
    if (items) items.push(item);
    else this.lanes.set(lane, [item]);
    this.count++;
  }

  /**
   * The head of the first lane (in rotation order) whose head may run now. Only heads are looked
   * at, so a lane never overtakes its own earlier requests.
   */
  dequeue(canRun: (item: T) => boolean = () => true): T | undefined {
    for (const [lane, items] of this.lanes) {
      const head = items[0];
      if (!canRun(head)) continue;
      items.shift();
      this.count--;
      this.lanes.delete(lane);
      if (items.length > 0) this.lanes.set(lane, items);
      return head;
    }
    return undefined;
  }

  remove(item: T): boolean {
    for (const [lane, items] of this.lanes) {
      const i = items.indexOf(item);
      if (i < 0) continue;
      items.splice(i, 1);
      this.count--;
      if (items.length === 0) this.lanes.delete(lane);
      return true;
    }
    return false;
  }

  /** Removes and returns every item matching `predicate`, in queue order per lane. */
  drain(predicate: (item: T) => boolean = () => true): T[] {
    const out: T[] = [];
    for (const [lane, items] of [...this.lanes]) {
      const keep = items.filter((item) => !predicate(item));
      out.push(...items.filter(predicate));
      if (keep.length) this.lanes.set(lane, keep);
      else this.lanes.delete(lane);
    }
    this.count -= out.length;
    return out;
  }

  laneSize(lane: string): number {
    return this.lanes.get(lane)?.length ?? 0;
  }

  /** Items of one lane, oldest first (a copy). */
  laneItems(lane: string): T[] {
    return [...(this.lanes.get(lane) ?? [])];
  }
}
