/**
 * What a scan's walk leaves out on its own, counted for the summary. Apart from walk.ts so the extension host
 * can word a summary without loading the walk.
 */

/** Exclusions and .gitignore are the user's choice and not counted. */
export type WalkSkipReason = 'outsideRoots' | 'linkLoop' | 'alreadyScanned';
export type WalkSkipCounts = Record<WalkSkipReason, number>;

export function noSkips(): WalkSkipCounts {
  return { outsideRoots: 0, linkLoop: 0, alreadyScanned: 0 };
}

/** The summary's account of what the walk skipped, e.g. "skipped 2 symbolic links leading outside the scanned folders". */
export function skippedText(counts: WalkSkipCounts): string | undefined {
  const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;
  const parts: string[] = [];
  if (counts.outsideRoots) parts.push(`${plural(counts.outsideRoots, 'symbolic link', 'symbolic links')} leading outside the scanned folders`);
  if (counts.linkLoop) parts.push(plural(counts.linkLoop, 'symbolic link loop', 'symbolic link loops'));
  if (counts.alreadyScanned) parts.push(`${plural(counts.alreadyScanned, 'folder', 'folders')} reached a second time (scanned once)`);
  return parts.length > 0 ? `skipped ${parts.join(', ')}` : undefined;
}
