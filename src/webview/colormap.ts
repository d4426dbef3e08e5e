import { VIRIDIS_STOPS, type Rgb } from '../shared/palette';

/** The palette lives in src/shared/palette.ts, shared with the CLI's PNG renderer so exports look alike. */
export { colormap, COLORMAP_BOTTOM, COLORMAP_TOP, LUT_SIZE, lutOffset, VIRIDIS_LUT } from '../shared/palette';

export function cssColor(rgb: Rgb): string {
  return `rgb(${rgb[0]}, ${rgb[1]}, ${rgb[2]})`;
}

/** A CSS gradient of the map for the colour-scale key next to the controls. */
export function colormapGradient(): string {
  return `linear-gradient(to right, ${VIRIDIS_STOPS.map((s) => cssColor(s)).join(', ')})`;
}
