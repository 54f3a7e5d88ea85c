/**
 * One process of the threaded-wasm test: segments the shapes picture with the demo model on the wasm backend,
 * `--threads N` through `ClipSeg.fromPretrained`, or the default build without it, and prints the logits, the
 * threads in use and what asking for another thread count afterwards throws. It ends without `process.exit`, so
 * its exit shows that the threaded build's workers do not keep the process alive.
 */
import * as path from 'node:path';
import { selectBackend, wasmThreads } from '../../src/backend.js';
import { ClipSeg } from '../../src/clipseg.js';
import { REPO_ROOT } from './child_node.js';

const at = process.argv.indexOf('--threads');
const threads = at >= 0 ? Number(process.argv[at + 1]) : undefined;
const seg = await ClipSeg.fromPretrained(undefined, threads === undefined ? { backend: 'wasm' } : { backend: 'wasm', threads });
const results = await seg.segment(path.join(REPO_ROOT, 'assets', 'examples', 'shapes.jpg'), ['a red circle', 'a blue square'], { returnLogits: true });
let other: { name: string; message: string } | undefined;
try {
  await selectBackend('wasm', { threads: (threads ?? 1) + 1 });
} catch (err) {
  other = { name: (err as Error).constructor.name, message: (err as Error).message };
}
process.stdout.write(
  `${JSON.stringify({ backend: seg.backend, threads: wasmThreads(), logits: results.map((r) => Array.from(r.logits ?? [])), other })}\n`,
);
seg.dispose();
