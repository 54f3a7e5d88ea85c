/**
 * A progress bar counting items (images, prompts) on stderr, drawn only on a terminal; `src/io/progress.ts` has the
 * byte-counting bar used for downloads.
 */
import cliProgress from 'cli-progress';
import { progressEnabled } from '../io/progress.js';

export interface CountProgress {
  tick(detail?: string): void;
  done(): void;
}

export function countProgress(label: string, total: number, enabled = progressEnabled()): CountProgress {
  if (!enabled || total < 2) return { tick: () => undefined, done: () => undefined };
  const bar = new cliProgress.SingleBar({
    format: `${label} [{bar}] {value}/{total} | {eta_formatted} left | {detail}`,
    stream: process.stderr,
    clearOnComplete: true,
    hideCursor: true,
    barsize: 30,
  });
  bar.start(total, 0, { detail: '' });
  return {
    tick: (detail = '') => bar.increment(1, { detail }),
    done: () => bar.stop(),
  };
}
