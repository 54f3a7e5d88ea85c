/**
 * The prompt templates of CLIPSeg's mixed ("PC+") training (clipseg `models/clipseg.py`, `shuffle+`).
 * In non-mixed training and at test time the raw phrase is used without a template.
 */
import type { Rng } from './rng.js';

export const PROMPT_TEMPLATES: readonly string[] = Object.freeze([
  'a photo of a {}.',
  'a photograph of a {}.',
  'an image of a {}.',
  '{}.',
  'a cropped photo of a {}.',
  'a good photo of a {}.',
  'a photo of one {}.',
  'a bad photo of a {}.',
  'a photo of the {}.',
]);

export function applyTemplate(template: string, phrase: string): string {
  return template.replace('{}', () => phrase);
}

/** Wraps `phrase` in a template drawn uniformly with replacement. */
export function randomPrompt(rng: Rng, phrase: string, templates: readonly string[] = PROMPT_TEMPLATES): string {
  return applyTemplate(rng.pick(templates), phrase);
}
