/**
 * The label check of one dataset view, kept up to date as rows arrive: folder -> label mappings (computed
 * by the worker, which holds the 21,841 labels), each image checked against its folder's labels, and the
 * suspects ranked by how confident the disagreement is.
 *
 * Incremental: each update looks only at rows added since the last one; a corrected mapping starts over.
 * Memory per suspect is one small object (row id, reasons, margin, top-1), never the row's results.
 */
import { checkImage, compareSuspects, type CheckReason } from '../../core/scan/labelCheck';
import type { Prediction } from '../../core/predictions';
import type { ResultTable } from '../../core/scan/resultTable';
import type { FolderMappingDto, LabelCheckDto, RowCheckDto } from '../../shared/protocol';
import type { FolderMappingResult, FolderOverrides } from '../worker/workerProtocol';

export const DEFAULT_LOW_SCORE = 0.2;

interface Suspect {
  row: number;
  reasons: CheckReason[];
  confidence: number;
  folderRank: number | null;
  top1: Prediction;
}

interface FolderCounts {
  images: number;
  disagreements: number;
  lowConfidence: number;
}

export interface DatasetLabelCheckDeps {
  mapFolders(folders: string[], overrides: FolderOverrides): Promise<FolderMappingResult[]>;
  overrides(): FolderOverrides;
  lowScore?: number;
}

export class DatasetLabelCheck {
  private mappings = new Map<string, FolderMappingResult>();
  private counts = new Map<string, FolderCounts>();
  private suspects: Suspect[] = [];
  private processed = 0;
  private totals = { checked: 0, disagreements: 0, lowConfidence: 0, unmapped: 0 };
  private ranked?: Int32Array;
  private work: Promise<void> = Promise.resolve();
  private epoch = 0;
  /** Changes whenever the set or order of suspects may have changed: part of the host's memo keys. */
  version = 0;

  constructor(private readonly deps: DatasetLabelCheckDeps) {}

  get lowScore(): number {
    return this.deps.lowScore ?? DEFAULT_LOW_SCORE;
  }

  /** Forgets everything (a new table, or a corrected mapping); the next update starts over. */
  reset(): void {
    this.epoch++;
    this.mappings = new Map();
    this.counts = new Map();
    this.suspects = [];
    this.processed = 0;
    this.totals = { checked: 0, disagreements: 0, lowConfidence: 0, unmapped: 0 };
    this.ranked = undefined;
    this.version++;
  }

  /** Maps new folders and checks new rows. Calls are serialised; a reset in between wins. */
  update(table: ResultTable): Promise<void> {
    const run = this.work.then(() => this.catchUp(table, this.epoch));
    this.work = run.catch(() => undefined);
    return run;
  }

  private async catchUp(table: ResultTable, epoch: number): Promise<void> {
    const size = table.size;
    if (size === this.processed && table.folders().every((f) => f.folderLabel === null || this.mappings.has(f.folderLabel))) return;
    const missing = table
      .folders()
      .map((f) => f.folderLabel)
      .filter((f): f is string => f !== null && !this.mappings.has(f));
    if (missing.length > 0) {
      const overrides = this.deps.overrides();
      const relevant = Object.fromEntries(missing.filter((f) => Object.prototype.hasOwnProperty.call(overrides, f)).map((f) => [f, overrides[f]]));
      const mapped = await this.deps.mapFolders(missing, relevant);
      if (epoch !== this.epoch) return;
      for (const m of mapped) this.mappings.set(m.folder, m);
    }
    let changed = false;
    for await (const row of table.entries(this.processed, size)) {
      if (epoch !== this.epoch) return;
      if (!row.top?.length || row.folderLabel === null) continue;
      const mapping = this.mappings.get(row.folderLabel);
      if (!mapping) continue;
      const check = checkImage(row.top, mapping.accepted, { lowScore: this.lowScore });
      const counts = this.countsOf(row.folderLabel);
      counts.images++;
      this.totals.checked++;
      if (mapping.accepted.length === 0) this.totals.unmapped++;
      if (check.reasons.includes('disagree')) {
        counts.disagreements++;
        this.totals.disagreements++;
      }
      if (check.reasons.includes('low-confidence')) {
        counts.lowConfidence++;
        this.totals.lowConfidence++;
      }
      if (check.reasons.length > 0) {
        this.suspects.push({ row: row.row, reasons: check.reasons, confidence: check.confidence, folderRank: check.folderRank, top1: row.top[0] });
        changed = true;
      }
    }
    if (epoch !== this.epoch) return;
    this.processed = size;
    if (changed) {
      this.ranked = undefined;
      this.version++;
    }
  }

  private countsOf(folder: string): FolderCounts {
    let counts = this.counts.get(folder);
    if (!counts) {
      counts = { images: 0, disagreements: 0, lowConfidence: 0 };
      this.counts.set(folder, counts);
    }
    return counts;
  }

  /** Suspect row ids, most suspicious first: confident disagreements, then the least confident images. */
  rankedRows(): Int32Array {
    this.ranked ??= Int32Array.from([...this.suspects].sort((a, b) => compareSuspects(a, b) || a.row - b.row).map((s) => s.row));
    return this.ranked;
  }

  /** 1 at each suspect's row id. */
  suspectMask(size: number): Uint8Array {
    const mask = new Uint8Array(size);
    for (const s of this.suspects) if (s.row < size) mask[s.row] = 1;
    return mask;
  }

  /** The check of one row, for the table's flag column; undefined until its folder is mapped. */
  checkOf(row: { folderLabel: string | null; top?: Prediction[] }): RowCheckDto | undefined {
    if (!row.top?.length || row.folderLabel === null) return undefined;
    const mapping = this.mappings.get(row.folderLabel);
    if (!mapping) return undefined;
    const check = checkImage(row.top, mapping.accepted, { lowScore: this.lowScore });
    return {
      reasons: check.reasons,
      confidence: check.confidence,
      folderRank: check.folderRank,
      expected: mapping.index !== null && mapping.label !== null ? { index: mapping.index, label: mapping.label } : null,
    };
  }

  dto(): LabelCheckDto {
    const mappings: FolderMappingDto[] = [...this.mappings.values()]
      .sort((a, b) => (a.folder < b.folder ? -1 : a.folder > b.folder ? 1 : 0))
      .map((m) => {
        const counts = this.counts.get(m.folder) ?? { images: 0, disagreements: 0, lowConfidence: 0 };
        return {
          folder: m.folder,
          kind: m.kind,
          index: m.index,
          label: m.label,
          ...(m.synonym !== undefined ? { synonym: m.synonym } : {}),
          score: m.score,
          accepted: m.accepted.map((index, i) => ({ index, label: m.acceptedLabels[i] ?? `class ${index}` })),
          candidates: m.candidates.map((c) => ({ index: c.index, label: c.label, kind: c.kind, score: c.score, synonym: c.synonym })),
          ...counts,
        };
      });
    return { mappings, ...this.totals, suspects: this.suspects.length, lowScore: this.lowScore };
  }
}
