import type { PatchCell } from './geometry';
import { el } from './dom';
import { type PanelView } from './view';

/** Hover and keyboard feedback on the image: an outline on the patch and a tooltip beside it. */
export function showPatchTooltip(view: Pick<PanelView, 'tooltip' | 'cursor' | 'stage'>, cell: PatchCell, grid: number, lines: string[], anchor?: { x: number; y: number }): void {
  const { tooltip, cursor, stage } = view;
  tooltip.replaceChildren(...lines.map((line) => el('div', {}, [line])));
  tooltip.hidden = false;

  // Percentages keep the outline on its patch however the stage is scaled.
  cursor.style.left = `${(cell.col / grid) * 100}%`;
  cursor.style.top = `${(cell.row / grid) * 100}%`;
  cursor.style.width = cursor.style.height = `${100 / grid}%`;
  cursor.hidden = false;

  // Keyboard users have no pointer: put the tooltip at the patch's lower right corner instead.
  const box = stage.getBoundingClientRect();
  const x = anchor ? anchor.x - box.left : ((cell.col + 1) / grid) * box.width;
  const y = anchor ? anchor.y - box.top : ((cell.row + 1) / grid) * box.height;
  // Near the right or bottom edge, anchor the tooltip by its other side so it opens towards the
  // middle; anchoring (rather than a transform) also gives it the full width to lay out in.
  const flipX = x > box.width * 0.6;
  const flipY = y > box.height * 0.7;
  tooltip.style.left = flipX ? '' : `${x}px`;
  tooltip.style.right = flipX ? `${box.width - x}px` : '';
  tooltip.style.top = flipY ? '' : `${y}px`;
  tooltip.style.bottom = flipY ? `${box.height - y}px` : '';
}

export function hidePatchTooltip(view: Pick<PanelView, 'tooltip' | 'cursor'>): void {
  view.tooltip.hidden = true;
  view.cursor.hidden = true;
}
