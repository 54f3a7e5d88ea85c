/**
 * A byte-count progress bar on stderr for long operations (downloads, conversions). It draws only when stderr is a
 * terminal and `HF_HUB_DISABLE_PROGRESS_BARS` is not set, so logs and pipes never receive control characters.
 */
import cliProgress from 'cli-progress';

export interface Progress {
  /** Adds `n` units of work done. */
  tick(n: number): void;
  /** Removes the bar (or does nothing when none was drawn). */
  done(): void;
}

export interface ProgressOptions {
  /** Force the bar on or off; by default it is on when stderr is a TTY. */
  enabled?: boolean;
  /** Where to draw (stderr by default). */
  stream?: NodeJS.WritableStream;
}

const QUIET: Progress = { tick: () => undefined, done: () => undefined };

export function progressEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  const disabled = (env.HF_HUB_DISABLE_PROGRESS_BARS ?? '').toUpperCase();
  return process.stderr.isTTY === true && !['1', 'ON', 'YES', 'TRUE'].includes(disabled);
}

/** Sizes as 12.3 MB; the bar counts bytes. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let value = n / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

/** A bar labelled `label` for `total` bytes (unknown totals show the count only). */
export function createProgress(label: string, total: number | undefined, options: ProgressOptions = {}): Progress {
  if (!(options.enabled ?? progressEnabled())) return QUIET;
  const known = total !== undefined && total > 0;
  const bar = new cliProgress.SingleBar({
    format: known ? `${label} [{bar}] {percentage}% | {done} / {size}` : `${label} {done}`,
    stream: options.stream ?? process.stderr,
    clearOnComplete: true,
    hideCursor: true,
    barsize: 30,
    fps: 8,
  });
  let value = 0;
  bar.start(known ? total : 0, 0, { done: formatBytes(0), size: known ? formatBytes(total) : '?' });
  return {
    tick(n: number) {
      value += n;
      bar.update(value, { done: formatBytes(value) });
    },
    done() {
      bar.stop();
    },
  };
}
