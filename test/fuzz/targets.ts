/**
 * Every fuzz target by id. Modules load lazily, inside the child process, after the allocation guard is in place
 * (a library module that captured a constructor at import time would otherwise bypass it).
 */
import type { FuzzTarget } from './harness.js';

export interface TargetEntry {
  id: string;
  load(): Promise<FuzzTarget<never>>;
  /** Inputs per CI run; the long run multiplies it. Targets that write files or decode images get fewer. */
  ciRuns: number;
}

const entry = <M>(id: string, load: () => Promise<M>, pick: (m: M) => FuzzTarget<never>, ciRuns = 2000): TargetEntry => ({
  id,
  load: async () => pick(await load()),
  ciRuns,
});

export const TARGETS: readonly TargetEntry[] = [
  entry('safetensors-bytes', () => import('./safetensors_target.js'), (m) => m.safetensorsBytesTarget as FuzzTarget<never>),
  entry('safetensors-header', () => import('./safetensors_target.js'), (m) => m.safetensorsHeaderTarget as FuzzTarget<never>),
  entry('tokenizer-text', () => import('./tokenizer_target.js'), (m) => m.tokenizerTarget as FuzzTarget<never>),
  entry('tokenizer-argument', () => import('./tokenizer_target.js'), (m) => m.tokenizerArgumentTarget as FuzzTarget<never>),
  entry('torch-checkpoint-bytes', () => import('./torch_checkpoint_target.js'), (m) => m.torchCheckpointBytesTarget as FuzzTarget<never>),
  entry('torch-checkpoint-pickle', () => import('./torch_checkpoint_target.js'), (m) => m.torchPickleTarget as FuzzTarget<never>),
  entry('pickle-hostile', () => import('./pickle_target.js'), (m) => m.hostilePickleTarget as FuzzTarget<never>),
  entry('image-bytes', () => import('./image_target.js'), (m) => m.imageBytesTarget as FuzzTarget<never>),
  entry('image-header', () => import('./image_target.js'), (m) => m.imageHeaderTarget as FuzzTarget<never>, 1000),
  entry('phrasecut', () => import('./phrasecut_target.js'), (m) => m.phrasecutTarget as FuzzTarget<never>, 400),
];

export function targetById(id: string): TargetEntry {
  const found = TARGETS.find((t) => t.id === id);
  if (found === undefined) throw new Error(`unknown fuzz target '${id}' (known: ${TARGETS.map((t) => t.id).join(', ')})`);
  return found;
}
