/** What the numbers were measured on: CPU, cores, memory, OS, load, and the versions and threads of each side. */
import { readFileSync } from 'node:fs';
import * as os from 'node:os';
import type { SideResult } from './side_io.js';

function cpuModel(): string {
  try {
    const info = readFileSync('/proc/cpuinfo', 'utf8');
    const flags = /^flags\s*:\s*(.*)$/m.exec(info)?.[1]?.split(' ') ?? [];
    const simd = ['avx512f', 'avx2', 'avx', 'fma'].filter((f) => flags.includes(f));
    return `${os.cpus()[0]?.model ?? 'unknown'} (${simd.join(', ') || 'no AVX'})`;
  } catch {
    return os.cpus()[0]?.model ?? 'unknown';
  }
}

export type MachineInfo = {
  cpu: string;
  logical_cores: number;
  memory_gb: number;
  os: string;
  node: string;
  date: string;
  load_average_start: number[];
};

export function machineInfo(): MachineInfo {
  return {
    cpu: cpuModel(),
    logical_cores: os.availableParallelism(),
    memory_gb: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    date: new Date().toISOString(),
    load_average_start: os.loadavg().map((x) => Math.round(x * 100) / 100),
  };
}

/** Versions and thread counts as each side reported them (the first measured case of each side). */
export function sideDetails(results: readonly SideResult[]): Record<string, unknown> {
  const details: Record<string, unknown> = {};
  for (const result of results) {
    if (!result.available || result.impl in details) continue;
    details[result.impl] = { versions: result.versions, threads: result.threads };
  }
  return details;
}
