/**
 * Which image a command is about: the explorer or editor-title argument, a URI string from a
 * hover link, the active image preview or image tab, or else one the user picks.
 */
import * as vscode from 'vscode';
import { IMAGE_PREVIEW_VIEW_TYPE } from '../commandIds';
import { hasImageExtension, IMAGE_EXTENSIONS } from '../hover/imagePathDetection';

export function uriFromArgument(arg: unknown): vscode.Uri | undefined {
  if (arg instanceof vscode.Uri) return arg;
  if (typeof arg === 'string' && arg) return /^[a-z][a-z0-9+.-]+:/i.test(arg) && !/^[a-z]:[\\/]/i.test(arg) ? vscode.Uri.parse(arg, true) : vscode.Uri.file(arg);
  // Some menus pass { resourceUri } or similar objects.
  const resource = (arg as { resourceUri?: unknown; uri?: unknown } | undefined)?.resourceUri ?? (arg as { uri?: unknown } | undefined)?.uri;
  return resource instanceof vscode.Uri ? resource : undefined;
}

export function activeImageUri(): vscode.Uri | undefined {
  const input = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
  if (input instanceof vscode.TabInputCustom && input.viewType === IMAGE_PREVIEW_VIEW_TYPE) return input.uri;
  if ((input instanceof vscode.TabInputCustom || input instanceof vscode.TabInputText) && hasImageExtension(input.uri.path)) return input.uri;
  return undefined;
}

/** The image for a command, or undefined if the user cancelled; non-file URIs are refused. */
export async function resolveImageTarget(arg: unknown): Promise<vscode.Uri | undefined> {
  let uri = uriFromArgument(arg) ?? activeImageUri();
  if (!uri) {
    const picked = await vscode.window.showOpenDialog({ canSelectMany: false, openLabel: 'Classify', filters: { Images: [...IMAGE_EXTENSIONS] }, title: 'BEiT Lens: choose an image' });
    uri = picked?.[0];
  }
  if (!uri) return undefined;
  if (uri.scheme !== 'file') {
    void vscode.window.showErrorMessage(`BEiT Lens reads images from disk only; ${uri.toString(true)} is not a local file.`);
    return undefined;
  }
  return uri;
}

/** Explorer multi-selection: commands get (clicked, allSelected). */
export function selectedUris(arg: unknown, all: unknown): vscode.Uri[] {
  if (Array.isArray(all) && all.length > 1) return all.filter((u): u is vscode.Uri => u instanceof vscode.Uri && u.scheme === 'file');
  return [];
}
