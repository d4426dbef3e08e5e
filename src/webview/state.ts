import type { OverlayKind, PanelState } from '../shared/protocol';

/**
 * What survives a reload. VS Code hands this object to the extension's panel serializer, which
 * reopens the panel for `imagePath`, so it has PanelState's shape.
 */
export type PersistedState = Partial<PanelState> & { overlay: OverlayKind; opacity: number };

export const OVERLAYS: readonly OverlayKind[] = ['rollout', 'patches', 'class', 'patchAttention', 'none'];
export const DEFAULT_STATE: PersistedState = { overlay: 'rollout', opacity: 0.6 };

function isOverlay(v: unknown): v is OverlayKind {
  return typeof v === 'string' && (OVERLAYS as readonly string[]).includes(v);
}

/**
 * Restores from VS Code's stored state, taking each field only if it is valid: a state written by
 * an older version of the panel must not break the new one. The host's `data-image-path` wins over
 * the stored path because the host knows which image this panel now shows.
 */
export function restoreState(stored: unknown, hostImagePath: string | undefined): PersistedState {
  const s = typeof stored === 'object' && stored !== null ? (stored as Record<string, unknown>) : {};
  const opacity = typeof s.opacity === 'number' && s.opacity >= 0 && s.opacity <= 1 ? s.opacity : DEFAULT_STATE.opacity;
  const overlay = isOverlay(s.overlay) ? s.overlay : DEFAULT_STATE.overlay;
  const imagePath = hostImagePath || (typeof s.imagePath === 'string' && s.imagePath ? s.imagePath : undefined);
  return imagePath === undefined ? { overlay, opacity } : { imagePath, overlay, opacity };
}
