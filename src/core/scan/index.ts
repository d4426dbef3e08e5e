/**
 * The dataset scanning API, for the CLI and the editor's dataset view. Importing it loads neither sharp nor
 * onnxruntime (decoding happens in worker threads); the bench hooks are in ./scanBench.
 */
export { scanDataset, scanModelKey, type ScanModel, type ScanOptions, type ScanProgress, type ScanResult, type ScanSummary } from './scanner';
export { ResultStore, type CachedPrediction, type ResultStoreOptions, type StoreStats } from './resultStore';
export { ResultTable, type SortKey, type TableFilter, type TablePage, type TableQuery, type TableRow } from './resultTable';
export { PreprocessPool, BUNDLED_WORKER_FILE, defaultWorkerCount, defaultWorkerScript, type PreprocessPoolOptions } from './preprocessPool';
export { walkImages, countImages, resolveRoots, IMAGE_EXTENSIONS, type WalkEntry, type WalkOptions, type WalkWarning, type FileSignature } from './walk';
export {
  buildLabelIndex,
  checkImage,
  compareSuspects,
  LabelChecker,
  mapFolder,
  mapFolders,
  type FolderMapping,
  type ImageCheck,
  type LabelCandidate,
  type LabelCheckSummary,
  type LabelIndex,
  type LabelOverrides,
  type MatchKind,
  type Suspect,
} from './labelCheck';
export { searchLabels, type LabelMatch } from './labelSearch';
export {
  CSV_COLUMNS,
  createCsvWriter,
  createJsonlWriter,
  exportResults,
  formatForFile,
  openResultFile,
  parseJsonLine,
  toCsvRow,
  toJsonLine,
  toRecord,
  type ResultFormat,
  type ResultWriter,
  type ScanRecord,
} from './output';
export { decodeFileName, displayPath, encodeFileName, fsPath } from './fileNames';
