import { after, before } from 'node:test';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadTokenizer } from '../../src/io/tokenizer_files.js';
import type { CLIPTokenizer } from '../../src/processor/tokenizer.js';
import { PhraseCutDataset } from '../../src/train/phrasecut.js';
import { makeSynthetic, type MakeSyntheticOptions } from '../../src/train/synthetic.js';

export interface TrainingSet {
  /** Scratch folder of the test file, removed after its tests. */
  root: string;
  /** The synthetic PhraseCut folder. */
  data: string;
  /** Its train split, open. */
  dataset: PhraseCutDataset;
  tokenizer: CLIPTokenizer;
}

/** A synthetic PhraseCut set made before a test file's tests (its train split open) and removed after them. */
export function useTrainingSet(prefix: string, synthetic: Omit<MakeSyntheticOptions, 'out'>): TrainingSet {
  const set = {} as TrainingSet;
  before(async () => {
    set.root = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
    set.data = path.join(set.root, 'data');
    await makeSynthetic({ out: set.data, ...synthetic });
    set.dataset = await PhraseCutDataset.open(set.data, { split: 'train' });
    set.tokenizer = await loadTokenizer();
  });
  after(async () => {
    await set.dataset.close();
    await fs.rm(set.root, { recursive: true, force: true });
  });
  return set;
}
