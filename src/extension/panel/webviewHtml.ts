/**
 * The webview panels' HTML: no inline script or style, nothing remote, and a CSP that only
 * lets our own bundle run (by nonce) and only shows images the extension sent as data URIs (no
 * image is ever loaded from a resource root). Pure, so the policy is unit-tested as a string.
 */
import { randomBytes } from 'node:crypto';

/** 144 random bits in base64url (valid in a CSP nonce-source); always 24 characters, unlike stripping '+/=' from base64. */
export function makeNonce(): string {
  return randomBytes(18).toString('base64url');
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

export function contentSecurityPolicy(cspSource: string, nonce: string): string {
  return [`default-src 'none'`, `img-src data:`, `script-src 'nonce-${nonce}'`, `style-src ${cspSource} 'nonce-${nonce}'`].join('; ') + ';';
}

export interface PanelHtmlOptions {
  cspSource: string;
  nonce: string;
  scriptUri: string;
  styleUri: string;
  title: string;
}

export interface ExplanationHtmlOptions extends PanelHtmlOptions {
  /** Read by the webview and kept in its state, so the serializer can reopen the same image. */
  imagePath: string;
}

export interface DatasetHtmlOptions extends PanelHtmlOptions {
  /** Read by the webview and kept in its state, so the serializer can reopen the same dataset. */
  folder: string;
}

/** The one page both panels use: the CSP, the stylesheet and the bundle; the script builds the DOM. */
function panelHtml(o: PanelHtmlOptions, bodyAttribute: string, bodyValue: string): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${escapeHtml(contentSecurityPolicy(o.cspSource, o.nonce))}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" nonce="${o.nonce}" href="${escapeHtml(o.styleUri)}">
<title>${escapeHtml(o.title)}</title>
</head>
<body ${bodyAttribute}="${escapeHtml(bodyValue)}">
<script nonce="${o.nonce}" src="${escapeHtml(o.scriptUri)}"></script>
</body>
</html>`;
}

export function explanationHtml(o: ExplanationHtmlOptions): string {
  return panelHtml(o, 'data-image-path', o.imagePath);
}

/** The dataset view: same policy as the explanation panel (thumbnails arrive as data URIs). */
export function datasetHtml(o: DatasetHtmlOptions): string {
  return panelHtml(o, 'data-folder', o.folder);
}

/** The Model view: same policy; it shows only text the host sends. */
export function modelHtml(o: PanelHtmlOptions): string {
  return panelHtml(o, 'data-view', 'model');
}
