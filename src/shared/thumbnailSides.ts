/**
 * The longest sides, in pixels, the dataset view may ask thumbnails at. A short fixed list rather than any
 * number: the host caches thumbnails per side, so a slider dragged through every pixel value must not make
 * (and cache) a new picture per value. No zod here: the webview bundle imports this.
 */
export const THUMBNAIL_SIDES = [96, 192, 320] as const;
export type ThumbnailSide = (typeof THUMBNAIL_SIDES)[number];
/** What the table's rows get when a request names no side. */
export const DEFAULT_THUMBNAIL_SIDE: ThumbnailSide = 96;

/** The smallest side that fills `cssPixels` on a screen of `devicePixelRatio` (the largest there is, past it). */
export function thumbnailSideFor(cssPixels: number, devicePixelRatio = 1): ThumbnailSide {
  const wanted = cssPixels * (Number.isFinite(devicePixelRatio) && devicePixelRatio > 0 ? devicePixelRatio : 1);
  return THUMBNAIL_SIDES.find((side) => side >= wanted) ?? THUMBNAIL_SIDES[THUMBNAIL_SIDES.length - 1];
}
