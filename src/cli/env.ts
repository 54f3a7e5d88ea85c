/**
 * `clipseg env`: what this installation can run on. Reports the tfjs version, the registered backends and the one
 * chosen, the optional native TensorFlow packages and the GPUs, the cache folders, and a hint for each missing piece.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { currentBackend, selectBackend, wasmThreads } from '../backend.js';
import { hubCacheDir } from '../io/hub.js';
import { DEMO_MODEL_DIR, packageRoot } from '../pipeline/assets.js';
import { ClipSegError } from '../errors.js';

/**
 * tfjs-node-gpu 4.x links libtensorflow built for CUDA 11.2 / cuDNN 8.1 (it loads `libcudart.so.11.0` and
 * `libcudnn.so.8`); the prebuilt binaries exist for Linux x86_64 and Windows x86_64 only.
 */
export const GPU_REQUIREMENTS = 'NVIDIA driver >= 450, CUDA 11.2 and cuDNN 8.1 (libcudart.so.11.0, libcudnn.so.8), Linux or Windows on x86_64';

export interface PackageStatus {
  name: string;
  installed: boolean;
  version?: string;
  hint?: string;
}

export interface GpuStatus {
  /** How the list was obtained: `nvidia-smi`, or `unavailable` when the tool is missing. */
  source: 'nvidia-smi' | 'unavailable';
  devices: string[];
  /** CUDA libraries tfjs-node-gpu needs, and whether the dynamic loader can find each one (Linux only). */
  libraries: Record<string, boolean>;
  hint?: string;
}

export interface EnvironmentReport {
  package: { name: string; version: string; root: string };
  node: { version: string; platform: string; arch: string };
  tfjs: string;
  backends: { registered: string[]; chosen: string | null; wasmThreads?: number; error?: string; hint?: string };
  nativePackages: PackageStatus[];
  gpu: GpuStatus;
  cache: { hub: string; exists: boolean; source: string; offline: boolean; endpoint: string };
  demoModel: { path: string; present: boolean; hint?: string };
}

const require = createRequire(import.meta.url);

function packageStatus(name: string, hint: string): PackageStatus {
  try {
    const manifest = require.resolve(`${name}/package.json`);
    const version = (JSON.parse(readFileSync(manifest, 'utf8')) as { version?: string }).version;
    return { name, installed: true, ...(version !== undefined ? { version } : {}) };
  } catch {
    return { name, installed: false, hint };
  }
}

function run(file: string, args: string[]): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: 5000 }, (err, stdout) => resolve(err ? undefined : stdout));
  });
}

async function gpuStatus(): Promise<GpuStatus> {
  const listing = await run('nvidia-smi', ['--query-gpu=name,memory.total,driver_version', '--format=csv,noheader']);
  const devices = listing === undefined ? [] : listing.split('\n').map((l) => l.trim()).filter((l) => l.length > 0);
  const libraries: Record<string, boolean> = {};
  if (process.platform === 'linux') {
    const cache = (await run('ldconfig', ['-p'])) ?? (await run('/sbin/ldconfig', ['-p'])) ?? '';
    const extra = (process.env.LD_LIBRARY_PATH ?? '').split(':').filter((d) => d.length > 0);
    for (const lib of ['libcudart.so.11.0', 'libcudnn.so.8']) {
      libraries[lib] = cache.includes(lib) || extra.some((dir) => existsSync(path.join(dir, lib)));
    }
  }
  const status: GpuStatus = { source: listing === undefined ? 'unavailable' : 'nvidia-smi', devices, libraries };
  if (listing === undefined) {
    status.hint = 'no NVIDIA driver found (nvidia-smi is missing); GPU acceleration needs an NVIDIA GPU and its driver';
  } else if (Object.values(libraries).some((found) => !found)) {
    const missing = Object.entries(libraries).filter(([, found]) => !found).map(([lib]) => lib);
    status.hint = `the dynamic loader cannot find ${missing.join(', ')}: install CUDA 11.2 and cuDNN 8.1 or add their lib folders to LD_LIBRARY_PATH`;
  }
  return status;
}

function readPackageManifest(root: string): { name: string; version: string } {
  try {
    const json = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { name?: string; version?: string };
    return { name: json.name ?? 'clipseg-tfjs', version: json.version ?? 'unknown' };
  } catch {
    return { name: 'clipseg-tfjs', version: 'unknown' };
  }
}

function cacheSource(): string {
  if (process.env.HF_HUB_CACHE) return 'HF_HUB_CACHE';
  if (process.env.HF_HOME) return 'HF_HOME';
  if (process.env.XDG_CACHE_HOME) return 'XDG_CACHE_HOME';
  return 'default (~/.cache/huggingface/hub)';
}

/** Gathers the report; `backend` is the name asked for (`--backend` or `CLIPSEG_BACKEND`), `auto` when absent. */
export async function collectEnvironment(backend?: string): Promise<EnvironmentReport> {
  const root = packageRoot();
  const nativePackages = [
    packageStatus('@tensorflow/tfjs-node', 'npm install @tensorflow/tfjs-node   (native TensorFlow on the CPU, several times faster than wasm)'),
    packageStatus('@tensorflow/tfjs-node-gpu', `npm install @tensorflow/tfjs-node-gpu   (needs ${GPU_REQUIREMENTS})`),
  ];
  const backends: EnvironmentReport['backends'] = { registered: [], chosen: null };
  try {
    await selectBackend(backend as Parameters<typeof selectBackend>[0]);
    backends.chosen = currentBackend();
    const threads = wasmThreads();
    if (backends.chosen === 'wasm' && threads !== undefined) backends.wasmThreads = threads;
  } catch (err) {
    backends.error = err instanceof ClipSegError ? err.message : String(err);
  }
  backends.registered = Object.keys(tf.engine().registryFactory).sort();
  if (!backends.registered.includes('tensorflow')) {
    backends.hint = 'install @tensorflow/tfjs-node (or -gpu) for the native "tensorflow" backend';
  }
  const hub = hubCacheDir();
  const demoPath = DEMO_MODEL_DIR;
  const demoPresent = existsSync(path.join(demoPath, 'config.json'));
  return {
    package: { ...readPackageManifest(root), root },
    node: { version: process.version, platform: process.platform, arch: os.arch() },
    tfjs: tf.version.tfjs,
    backends,
    nativePackages,
    gpu: await gpuStatus(),
    cache: {
      hub,
      exists: existsSync(hub),
      source: cacheSource(),
      offline: ['1', 'true', 'yes', 'on'].includes((process.env.HF_HUB_OFFLINE ?? '').toLowerCase()),
      endpoint: process.env.HF_ENDPOINT ?? 'https://huggingface.co',
    },
    demoModel: demoPresent
      ? { path: demoPath, present: true }
      : { path: demoPath, present: false, hint: 'the package is incomplete: reinstall it, or pass --model to every command' },
  };
}

function line(label: string, value: string, hint?: string): string {
  const text = `${label.padEnd(16)}${value}`;
  return hint === undefined ? text : `${text}\n${' '.repeat(16)}hint: ${hint}`;
}

function threadsNote(threads: number | undefined): string {
  if (threads === undefined) return '';
  return threads > 1 ? ` (threaded SIMD build, ${threads} threads)` : ' (1 thread)';
}

export function formatEnvironment(r: EnvironmentReport): string {
  const out: string[] = [
    line('package', `${r.package.name} ${r.package.version} (${r.package.root})`),
    line('node', `${r.node.version} (${r.node.platform} ${r.node.arch})`),
    line('tfjs', r.tfjs),
    line('backends', `registered: ${r.backends.registered.join(', ') || 'none'}`, r.backends.hint),
    line('backend', r.backends.chosen === null ? `none (${r.backends.error ?? 'unknown error'})` : `${r.backends.chosen}${threadsNote(r.backends.wasmThreads)}`),
  ];
  for (const p of r.nativePackages) {
    out.push(line(p.name.replace('@tensorflow/', ''), p.installed ? `installed ${p.version ?? ''}`.trim() : 'not installed', p.hint));
  }
  const gpus = r.gpu.source === 'unavailable' ? 'none found' : r.gpu.devices.join('; ') || 'none';
  out.push(line('GPUs', gpus, r.gpu.hint));
  for (const [lib, found] of Object.entries(r.gpu.libraries)) out.push(line('', `${lib}: ${found ? 'found' : 'not found'}`));
  out.push(line('HF cache', `${r.cache.hub} (${r.cache.exists ? 'exists' : 'not created yet'}; from ${r.cache.source})`));
  out.push(line('HF endpoint', `${r.cache.endpoint}${r.cache.offline ? ' (offline: HF_HUB_OFFLINE is set)' : ''}`));
  out.push(line('demo model', `${r.demoModel.path} (${r.demoModel.present ? 'present' : 'missing'})`, r.demoModel.hint));
  return `${out.join('\n')}\n`;
}
