/** Node child processes for the crash and disk-full tests: run a script (through tsx) and collect its output. */
import { spawn } from 'node:child_process';
import * as path from 'node:path';

export const REPO_ROOT = path.resolve(import.meta.dirname, '..', '..');

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunNodeOptions {
  /** Run under `ulimit -f` (KiB) with SIGXFSZ ignored, so writes past the limit fail with EFBIG. */
  limitKiB?: number;
  /** Sees the child's pid as soon as it exists (to kill it). */
  onSpawn?: (pid: number) => void;
}

/** Runs `node --import tsx ARGS` in the repository root on the wasm backend. */
export function runNode(args: readonly string[], options: RunNodeOptions = {}): Promise<Exit> {
  const node = [process.execPath, '--import', 'tsx', ...args].map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' ');
  const script = options.limitKiB === undefined ? `exec ${node}` : `trap '' XFSZ; ulimit -f ${options.limitKiB}; exec ${node}`;
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', script], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CLIPSEG_BACKEND: 'wasm' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    if (child.pid !== undefined) options.onSpawn?.(child.pid);
    child.on('exit', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** `clipseg train` arguments for a tiny model that checkpoints every step and resumes from the latest checkpoint. */
export function tinyTrainArgs(data: string, out: string, steps: number): string[] {
  return [
    'src/cli/main.ts', 'train', '--data', data, '--out', out, '--config', 'tiny', '--steps', String(steps), '--batch-size', '1',
    '--checkpoint-every', '1', '--keep', '3', '--no-visual', '--seed', '4', '--resume',
  ];
}
