/**
 * Runs one fuzz target in a child process and watches it: no progress for `HANG_MS` (an input stuck in
 * synchronous code, which no in-process timer can interrupt) or an exit without a result (a crash, an abort, an
 * out-of-memory kill) fails the run with the seed and input index needed to replay it.
 */
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildMessage } from './child.js';
import type { FuzzStats } from './harness.js';

export const HANG_MS = 20_000;

/** Names the scratch folder a child may write to; the parent removes it, even after killing the child. */
export const SCRATCH_ENV = 'CLIPSEG_FUZZ_SCRATCH';

export interface IsolatedResult {
  id: string;
  seed: number;
  stats: FuzzStats;
  maxRssBytes: number;
  ms: number;
}

const CHILD = fileURLToPath(new URL('./child.ts', import.meta.url));

export function runIsolated(id: string, runs: number, seed: number): Promise<IsolatedResult> {
  return new Promise((resolve, reject) => {
    const scratch = mkdtempSync(path.join(tmpdir(), `clipseg-fuzz-${id}-`));
    const child = fork(CHILD, [id, String(runs), String(seed)], {
      env: { ...process.env, [SCRATCH_ENV]: scratch },
      execArgv: ['--import', 'tsx', '--max-old-space-size=2048'],
      // Decoders print warnings about malformed input to stdout; results travel over IPC, so stdout is dropped.
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-4000);
    });
    let lastCase = -1;
    let result: ChildMessage | undefined;
    const replay = `target ${id}, FUZZ_SEED=${seed}`;
    let watchdog = setTimeout(onHang, HANG_MS);
    function onHang(): void {
      child.kill('SIGKILL');
      reject(new Error(`${replay}: input ${lastCase} made no progress for ${HANG_MS} ms (hang)`));
    }
    child.on('message', (message: ChildMessage) => {
      clearTimeout(watchdog);
      watchdog = setTimeout(onHang, HANG_MS);
      if (message.type === 'case') lastCase = message.index;
      else result = message;
    });
    child.on('exit', (code, signal) => {
      clearTimeout(watchdog);
      rmSync(scratch, { recursive: true, force: true });
      if (result?.type === 'done') resolve({ id, seed, stats: result.stats, maxRssBytes: result.maxRssBytes, ms: result.ms });
      else if (result?.type === 'failed') reject(new Error(`${replay}: ${result.message}`));
      else reject(new Error(`${replay}: the child exited (code ${code}, signal ${signal}) during input ${lastCase}\n${stderr}`));
    });
  });
}
