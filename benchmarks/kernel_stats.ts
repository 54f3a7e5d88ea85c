/** Aggregation of `tf.profile` kernel records into the tables `profile.ts` prints. */

export interface KernelRecord {
  name: string;
  inputShapes: number[][];
  ms: number;
}

export interface KernelGroup {
  key: string;
  calls: number;
  ms: number;
}

/** Sums kernel times by `keyOf`, largest first. */
export function groupKernels(records: readonly KernelRecord[], keyOf: (r: KernelRecord) => string): KernelGroup[] {
  const groups = new Map<string, KernelGroup>();
  for (const r of records) {
    const key = keyOf(r);
    const g = groups.get(key) ?? { key, calls: 0, ms: 0 };
    g.calls += 1;
    g.ms += r.ms;
    groups.set(key, g);
  }
  return [...groups.values()].sort((a, b) => b.ms - a.ms);
}

export function byShapeKey(r: KernelRecord): string {
  return `${r.name} ${r.inputShapes.map((s) => `[${s.join(',')}]`).join(' ')}`;
}

export function renderGroups(title: string, groups: readonly KernelGroup[], totalMs: number, top: number): string {
  const lines = [`| ${title} | calls | ms | share |`, '|---|---|---|---|'];
  for (const g of groups.slice(0, top)) {
    lines.push(`| ${g.key} | ${g.calls} | ${g.ms.toFixed(1)} | ${((100 * g.ms) / totalMs).toFixed(1)}% |`);
  }
  return lines.join('\n');
}
