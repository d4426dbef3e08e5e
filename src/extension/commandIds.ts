/** Command ids are part of the extension's public interface (menus, keybindings, other extensions). */
export const Command = {
  classifyImage: 'beitLens.classifyImage',
  explainImage: 'beitLens.explainImage',
  classifyFolder: 'beitLens.classifyFolder',
  downloadModel: 'beitLens.downloadModel',
  selectModel: 'beitLens.selectModel',
  convertModel: 'beitLens.convertModel',
  doctor: 'beitLens.doctor',
  showModel: 'beitLens.showModel',
  classifyOutputImages: 'beitLens.classifyOutputImages',
  explainOutputImage: 'beitLens.explainOutputImage',
  copyDoctorReport: 'beitLens.copyDoctorReport',
  findSimilarImages: 'beitLens.findSimilarImages',
  setEndpointToken: 'beitLens.setEndpointToken',
  clearEndpointToken: 'beitLens.clearEndpointToken',
} as const;

export const EXPLANATION_VIEW_TYPE = 'beitLens.explanation';
export const DATASET_VIEW_TYPE = 'beitLens.dataset';
export const MODEL_VIEW_TYPE = 'beitLens.model';
export const IMAGE_PREVIEW_VIEW_TYPE = 'imagePreview.previewEditor';
