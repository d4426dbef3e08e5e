/** Command ids are part of the extension's public interface (menus, keybindings, other extensions). */
export const Command = {
  classifyImage: 'beitLens.classifyImage',
  explainImage: 'beitLens.explainImage',
  classifyFolder: 'beitLens.classifyFolder',
  downloadModel: 'beitLens.downloadModel',
  selectModel: 'beitLens.selectModel',
  convertModel: 'beitLens.convertModel',
  doctor: 'beitLens.doctor',
  copyDoctorReport: 'beitLens.copyDoctorReport',
} as const;

export const EXPLANATION_VIEW_TYPE = 'beitLens.explanation';
export const DATASET_VIEW_TYPE = 'beitLens.dataset';
export const IMAGE_PREVIEW_VIEW_TYPE = 'imagePreview.previewEditor';
