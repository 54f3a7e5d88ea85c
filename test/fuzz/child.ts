/**
 * Child-process entry of an isolated fuzz run: `child.ts <target id> <runs> <seed>`. Reports progress and the
 * outcome to the parent over IPC; the parent kills it when an input hangs.
 */
import { installAllocationGuard } from './alloc_guard.js';
import { targetById } from './targets.js';

export type ChildMessage =
  | { type: 'case'; index: number }
  | { type: 'done'; stats: import('./harness.js').FuzzStats; maxRssBytes: number; ms: number }
  | { type: 'failed'; message: string };

const send = (message: ChildMessage): void => {
  process.send?.(message);
};

const [id = '', runsText = '', seedText = ''] = process.argv.slice(2);
const entry = targetById(id);
installAllocationGuard();
const { fuzz } = await import('./harness.js');
const target = await entry.load();
const started = performance.now();
try {
  const stats = await fuzz(target, Number(runsText), { seed: Number(seedText), onCase: (index) => send({ type: 'case', index }) });
  send({ type: 'done', stats, maxRssBytes: process.resourceUsage().maxRSS * 1024, ms: performance.now() - started });
} catch (err) {
  // fast-check prints the whole counterexample; a mutated image is hundreds of kilobytes of it. The seed and path
  // on the line above it replay the input, so long lines are cut.
  const message = err instanceof Error ? `${err.message}${describeCause(err.cause)}` : String(err);
  const lines = message.split('\n').map((line) => (line.length > 800 ? `${line.slice(0, 800)} [... ${line.length - 800} more characters]` : line));
  send({ type: 'failed', message: lines.join('\n') });
}
// No disconnect: it would drop messages still queued on the channel; the process exits once they are written.

/** The error the failing input raised, with the top of its stack (where in the library it was thrown). */
function describeCause(cause: unknown): string {
  if (!(cause instanceof Error)) return cause === undefined ? '' : `\ncaused by: ${String(cause)}`;
  const frames = (cause.stack ?? '').split('\n').filter((line) => line.trimStart().startsWith('at ')).slice(0, 8);
  return `\ncaused by ${cause.name}: ${cause.message}\n${frames.join('\n')}`;
}
