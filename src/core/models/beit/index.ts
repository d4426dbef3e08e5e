import { ModelFamily } from '../visionConfig';
import { parseBeitFamilyConfig } from './config';

export const BEIT_FAMILY: ModelFamily = {
  id: 'beit',
  displayName: 'BEiT',
  modelTypes: ['beit'],
  classifierClass: 'BeitForImageClassification',
  parseConfig: (json, file) => parseBeitFamilyConfig(json, file, 'beit'),
};

/** data2vec-vision: BEiT's architecture and options, its weights under `data2vec_vision.`. */
export const DATA2VEC_VISION_FAMILY: ModelFamily = {
  id: 'data2vec-vision',
  displayName: 'data2vec-vision',
  modelTypes: ['data2vec-vision'],
  classifierClass: 'Data2VecVisionForImageClassification',
  parseConfig: (json, file) => parseBeitFamilyConfig(json, file, 'data2vec-vision'),
};
