/**
 * Flag counts over a stream of results, for the CLI's summary line. odd_size needs every image's size, so the
 * tally keeps one float64 per measured image (8 MB for a million) and decides it at the end.
 */
import { QUALITY_FLAGS, oddSizeFlags, type QualityFlag, type QualityMeasures } from './measures';

export class QualityTally {
  private sizes = new Float64Array(1024);
  private measured = 0;
  private readonly counts = new Map<QualityFlag, number>();

  add(result: { quality?: QualityMeasures; flags?: readonly QualityFlag[] }): void {
    if (!result.quality) return;
    if (this.measured === this.sizes.length) {
      const next = new Float64Array(this.sizes.length * 2);
      next.set(this.sizes);
      this.sizes = next;
    }
    this.sizes[this.measured++] = result.quality.size;
    for (const flag of result.flags ?? []) this.counts.set(flag, (this.counts.get(flag) ?? 0) + 1);
  }

  /** Images measured, and how many raise each flag (odd_size included), in cleanvision's order. */
  summary(): { measured: number; counts: Array<{ flag: QualityFlag; count: number }> } {
    let odd = 0;
    for (const bit of oddSizeFlags(this.sizes.subarray(0, this.measured))) odd += bit;
    const counts = QUALITY_FLAGS.map((flag) => ({ flag, count: flag === 'odd_size' ? odd : (this.counts.get(flag) ?? 0) }));
    return { measured: this.measured, counts };
  }

  /** "quality: 2 dark, 1 blurry of 40 images measured", or undefined when nothing was measured. */
  line(): string | undefined {
    const { measured, counts } = this.summary();
    if (measured === 0) return undefined;
    const raised = counts.filter((c) => c.count > 0).map((c) => `${c.count} ${c.flag}`);
    return `quality: ${raised.length ? raised.join(', ') : 'no flags'} (${measured} images measured; cleanvision's thresholds)`;
  }
}
