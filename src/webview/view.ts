import { Command } from '../extension/commandIds';
import { noModelActions } from '../extension/model/modelActions';
import type { HeadFusion, OverlayKind, RecoveryCommand } from '../shared/protocol';
import { colormapGradient } from './colormap';
import { el } from './dom';

/**
 * The panel's DOM, built in script so the host's HTML is only the CSP, the stylesheet and this
 * bundle. All text goes in through textContent: labels come from a model's config file.
 */

export const OVERLAY_LABELS: Record<OverlayKind, string> = {
  rollout: 'Attention rollout',
  patches: 'Patch predictions',
  class: 'Class heatmap',
  patchAttention: 'Attention from a patch',
  none: 'None',
};

const OVERLAY_ORDER: OverlayKind[] = ['rollout', 'patches', 'class', 'patchAttention', 'none'];
const HEAD_FUSIONS: HeadFusion[] = ['mean', 'max', 'min'];

export interface PanelView {
  root: HTMLElement;
  status: HTMLElement;
  title: HTMLElement;
  provider: HTMLElement;
  stage: HTMLElement;
  image: HTMLImageElement;
  canvas: HTMLCanvasElement;
  cursor: HTMLElement;
  tooltip: HTMLElement;
  overlayRadios: Map<OverlayKind, HTMLInputElement>;
  opacity: HTMLInputElement;
  opacityValue: HTMLOutputElement;
  headFusion: HTMLSelectElement;
  discardRatio: HTMLInputElement;
  discardRatioValue: HTMLOutputElement;
  layer: HTMLSelectElement;
  head: HTMLSelectElement;
  patchHint: HTMLElement;
  topList: HTMLOListElement;
  legendList: HTMLUListElement;
  exportButton: HTMLButtonElement;
  /** Find Similar Images for this panel's image (the Dataset view opens on its neighbours). */
  findSimilarButton: HTMLButtonElement;
  exportDone: HTMLElement;
  exportFile: HTMLElement;
  revealButton: HTMLButtonElement;
  scaleCaption: HTMLElement;
  layout: HTMLElement;
  viewport: HTMLElement;
  zoomIn: HTMLButtonElement;
  zoomOut: HTMLButtonElement;
  fitToggle: HTMLButtonElement;
  zoomValue: HTMLOutputElement;
  emptyState: HTMLElement;
  emptyTitle: HTMLElement;
  emptyMessage: HTMLElement;
  recoveryButtons: Map<RecoveryCommand, HTMLButtonElement>;
}

/** The empty state's actions: the ways to a model every other "no model" place offers, then the doctor. */
const RECOVERY_ACTIONS: [RecoveryCommand, string][] = [
  ...noModelActions().map((a): [RecoveryCommand, string] => [a.command as RecoveryCommand, a.title]),
  [Command.doctor, 'Run Doctor'],
];

function slider(id: string, label: string, min: number, max: number, step: number): { row: HTMLElement; input: HTMLInputElement; output: HTMLOutputElement } {
  const input = el('input', { id, type: 'range', min, max, step });
  const output = el('output', { for: id, id: `${id}-value` });
  return { row: el('div', { class: 'control' }, [el('label', { for: id }, [label]), input, output]), input, output };
}

function select(id: string, label: string): { row: HTMLElement; input: HTMLSelectElement } {
  const input = el('select', { id });
  return { row: el('div', { class: 'control' }, [el('label', { for: id }, [label]), input]), input };
}

function section(id: string, heading: string, children: (Node | string)[]): HTMLElement {
  const headingId = `${id}-heading`;
  return el('section', { id, class: 'card', 'aria-labelledby': headingId }, [el('h2', { id: headingId }, [heading]), ...children]);
}

export function buildView(parent: HTMLElement): PanelView {
  const title = el('h1', { id: 'title' }, ['BEiT Lens']);
  const provider = el('span', { class: 'provider' });
  const status = el('div', { id: 'status', class: 'status', role: 'status', 'aria-live': 'polite' });

  const image = el('img', { id: 'image', alt: '', draggable: 'false' });
  const canvas = el('canvas', { id: 'overlay', tabindex: 0, role: 'img', 'aria-describedby': 'patch-tooltip', 'aria-label': 'Overlay' });
  const cursor = el('div', { class: 'patch-cursor', 'aria-hidden': 'true', hidden: true });
  const tooltip = el('div', { id: 'patch-tooltip', class: 'tooltip', role: 'tooltip', hidden: true });
  const stage = el('div', { class: 'stage' }, [image, canvas, cursor, tooltip]);
  const gradient = el('span', { class: 'scale-bar', 'aria-hidden': 'true' });
  gradient.style.backgroundImage = colormapGradient();
  const scaleCaption = el('span', { class: 'scale-caption' });
  const scale = el('div', { class: 'scale' }, [el('span', {}, ['low']), gradient, el('span', {}, ['high']), scaleCaption]);
  // The viewport clips and scrolls the stage: fitted it shows the whole image, zoomed it pans.
  const viewport = el('div', { id: 'stage-viewport', class: 'stage-viewport' }, [stage]);
  const zoomOut = el('button', { id: 'zoom-out', type: 'button', class: 'tool', 'aria-label': 'Zoom out', title: 'Zoom out (Ctrl+wheel)' }, ['−']);
  const zoomValue = el('output', { id: 'zoom-value', class: 'zoom-value', 'aria-live': 'polite' });
  const zoomIn = el('button', { id: 'zoom-in', type: 'button', class: 'tool', 'aria-label': 'Zoom in', title: 'Zoom in (Ctrl+wheel)' }, ['+']);
  const fitToggle = el('button', { id: 'zoom-fit', type: 'button', class: 'tool' }, ['1:1']);
  const zoomBar = el('div', { class: 'zoom-bar', role: 'toolbar', 'aria-label': 'Zoom' }, [zoomOut, zoomValue, zoomIn, fitToggle]);
  const stageColumn = el('section', { class: 'stage-column', 'aria-label': 'Image and overlay' }, [zoomBar, viewport, scale]);

  const overlayRadios = new Map<OverlayKind, HTMLInputElement>();
  const picker = el('fieldset', { class: 'overlay-picker card' }, [el('legend', {}, ['Overlay'])]);
  for (const kind of OVERLAY_ORDER) {
    const radio = el('input', { type: 'radio', name: 'overlay', id: `overlay-${kind}`, value: kind });
    overlayRadios.set(kind, radio);
    picker.append(el('div', { class: 'radio' }, [radio, el('label', { for: radio.id }, [OVERLAY_LABELS[kind]])]));
  }
  const opacity = slider('opacity', 'Opacity', 0, 100, 5);
  picker.append(opacity.row);

  const fusion = select('head-fusion', 'Head fusion');
  for (const f of HEAD_FUSIONS) fusion.input.append(el('option', { value: f }, [f]));
  const discard = slider('discard-ratio', 'Discard ratio', 0, 0.99, 0.01);
  const rolloutControls = section('rollout-controls', 'Attention rollout', [fusion.row, discard.row]);

  const layer = select('layer', 'Layer');
  const head = select('head', 'Head');
  const patchHint = el('p', { class: 'hint' }, ['Click a patch on the image (or focus it and press Enter) to see where it attends.']);
  const patchControls = section('patch-controls', 'Attention from a patch', [layer.row, head.row, patchHint]);

  const topList = el('ol', { class: 'top-k' });
  const topSection = section('top-predictions', 'Top predictions', [el('p', { class: 'hint' }, ['Choose a label to see its class heatmap.']), topList]);

  const legendList = el('ul', { id: 'legend', class: 'legend' });
  const legendSection = section('legend-section', 'Patch predictions', [legendList]);

  const exportButton = el('button', { id: 'export', type: 'button', class: 'primary' }, ['Export PNG']);
  const findSimilarButton = el('button', { id: 'find-similar', type: 'button', class: 'secondary', title: 'Open the Dataset view on the images most similar to this one' }, ['Find Similar']);
  const exportFile = el('span', { class: 'export-file' });
  const revealButton = el('button', { id: 'reveal-export', type: 'button', class: 'link-button' }, ['Reveal in Explorer']);
  const exportDone = el('div', { id: 'export-done', class: 'export-done', role: 'status', hidden: true }, [el('span', {}, ['Saved ']), exportFile, revealButton]);
  const sidebar = el('aside', { class: 'sidebar', 'aria-label': 'Controls' }, [picker, rolloutControls, patchControls, topSection, legendSection, el('div', { class: 'export-row' }, [exportButton, findSimilarButton, exportDone])]);

  const recoveryButtons = new Map<RecoveryCommand, HTMLButtonElement>();
  const actions = el('div', { class: 'empty-actions' });
  for (const [command, label] of RECOVERY_ACTIONS) {
    const button = el('button', { type: 'button', class: recoveryButtons.size === 0 ? 'primary' : 'secondary', 'data-command': command }, [label]);
    recoveryButtons.set(command, button);
    actions.append(button);
  }
  const emptyTitle = el('h2', { id: 'empty-state-heading' }, ['No model to explain with']);
  const emptyMessage = el('p', { class: 'empty-message' });
  const emptyState = el('section', { id: 'empty-state', class: 'empty-state', 'aria-labelledby': 'empty-state-heading', hidden: true }, [emptyTitle, emptyMessage, actions]);

  const header = el('header', { class: 'panel-header' }, [title, provider]);
  const layout = el('div', { class: 'layout' }, [stageColumn, sidebar]);
  const root = el('main', { class: 'panel', 'aria-busy': 'true' }, [header, status, emptyState, layout]);
  parent.append(root);

  return {
    root,
    status,
    title,
    provider,
    stage,
    image,
    canvas,
    cursor,
    tooltip,
    overlayRadios,
    opacity: opacity.input,
    opacityValue: opacity.output,
    headFusion: fusion.input,
    discardRatio: discard.input,
    discardRatioValue: discard.output,
    layer: layer.input,
    head: head.input,
    patchHint,
    topList,
    legendList,
    exportButton,
    findSimilarButton,
    exportDone,
    exportFile,
    revealButton,
    scaleCaption,
    layout,
    viewport,
    zoomIn,
    zoomOut,
    fitToggle,
    zoomValue,
    emptyState,
    emptyTitle,
    emptyMessage,
    recoveryButtons,
  };
}
