/** Aggregation of `tf.profile` kernel records into the tables `profile.ts` prints. */

export interface KernelRecord {
  name: string;
  inputShapes: number[][];
  ms: number;
  /** Bytes of the tensors the kernel created. */
  bytesAdded?: number;
}

export interface KernelGroup {
  key: string;
  calls: number;
  /** The summed value (milliseconds unless another value was summed). */
  sum: number;
}

/** Sums `valueOf` (default: kernel time) by `keyOf`, largest first. */
export function groupKernels(
  records: readonly KernelRecord[],
  keyOf: (r: KernelRecord) => string,
  valueOf: (r: KernelRecord) => number = (r) => r.ms,
): KernelGroup[] {
  const groups = new Map<string, KernelGroup>();
  for (const r of records) {
    const key = keyOf(r);
    const g = groups.get(key) ?? { key, calls: 0, sum: 0 };
    g.calls += 1;
    g.sum += valueOf(r);
    groups.set(key, g);
  }
  return [...groups.values()].sort((a, b) => b.sum - a.sum);
}

export function byShapeKey(r: KernelRecord): string {
  return `${r.name} ${r.inputShapes.map((s) => `[${s.join(',')}]`).join(' ')}`;
}

export function renderGroups(title: string, groups: readonly KernelGroup[], total: number, top: number, unit = 'ms'): string {
  const lines = [`| ${title} | calls | ${unit} | share |`, '|---|---|---|---|'];
  for (const g of groups.slice(0, top)) {
    lines.push(`| ${g.key} | ${g.calls} | ${g.sum.toFixed(1)} | ${((100 * g.sum) / total).toFixed(1)}% |`);
  }
  return lines.join('\n');
}
