/**
 * The quality flag names on their own (no imports), so the dataset webview and the message schemas share the
 * list with the measures without bundling them.
 */

/** cleanvision's issue types, in its IMAGE_PROPERTY_ISSUE_TYPES_LIST order. `light` is overexposed. */
export const QUALITY_FLAGS = ['dark', 'light', 'odd_aspect_ratio', 'low_information', 'blurry', 'grayscale', 'odd_size'] as const;
export type QualityFlag = (typeof QUALITY_FLAGS)[number];

/** Flag names <-> bits, for typed-array columns and compact messages. */
export function flagBits(flags: readonly string[]): number {
  let bits = 0;
  for (const f of flags) {
    const i = QUALITY_FLAGS.indexOf(f as QualityFlag);
    if (i >= 0) bits |= 1 << i;
  }
  return bits;
}

export function flagsFromBits(bits: number): QualityFlag[] {
  return QUALITY_FLAGS.filter((_, i) => (bits & (1 << i)) !== 0);
}

/** A list of known flag names (what a message or a stored view state may carry). */
export function isQualityFlagList(v: unknown): v is QualityFlag[] {
  return Array.isArray(v) && v.length <= QUALITY_FLAGS.length && v.every((f) => QUALITY_FLAGS.includes(f as QualityFlag));
}
