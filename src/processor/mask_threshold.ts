/**
 * The default probability threshold of a mask: a pixel is foreground when p > 0.3, the threshold of the paper's
 * PhraseCut and Pascal-5i tables (it reports 0.1-0.3 depending on the task). Kept apart from `postprocess.ts` so that
 * the command line can name it without loading tfjs.
 */
export const DEFAULT_MASK_THRESHOLD = 0.3;
