/**
 * Turns side results into the benchmark report: per case and implementation the median, min and max of the
 * timed runs and the peak RSS, ratios of ours over theirs on medians, the JSON document and the Markdown tables
 * kept in `benchmarks/README.md`. Pure functions only, so they are tested without running a model.
 */
import { FileFormatError, InvalidArgumentError } from '../src/errors.js';
import { CASES, IMPLS, type CaseName, type ImplName } from './cases.js';
import type { SideMeasured, SideResult } from './side_io.js';

export interface Summary {
  median_s: number;
  min_s: number;
  max_s: number;
  runs: number;
}

export interface ImplEntry extends Summary {
  peak_rss_mb: number;
  /** The model part of the same runs (prepared tensors to logits on the host), for the segment cases. */
  model_only?: Summary;
  /** train_step_b8 only: batch size over the median step time. */
  samples_per_s?: number;
  /** clipseg-tfjs only. */
  tfjs_memory?: Record<string, number>;
}

export type CaseEntry = Partial<Record<ImplName, ImplEntry>> & {
  ratio_vs_pytorch?: number;
  ratio_vs_transformers_js?: number;
};

export interface BenchReport {
  machine: Record<string, unknown>;
  cases: Partial<Record<CaseName, CaseEntry>>;
  /** Implementation (or implementation/case) -> the one-line reason it did not run. */
  unavailable?: Record<string, string>;
}

export function summarize(samples: readonly number[]): Summary {
  if (samples.length === 0) throw new InvalidArgumentError('samples: expected at least one timing, got none');
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { median_s: median, min_s: sorted[0]!, max_s: sorted[sorted.length - 1]!, runs: sorted.length };
}

export function implEntry(result: SideMeasured, batchSize: number): ImplEntry {
  const entry: ImplEntry = { ...summarize(result.e2e_s), peak_rss_mb: round(result.peak_rss_mb, 1) };
  if (result.model_s !== undefined && result.model_s.length > 0) entry.model_only = summarize(result.model_s);
  if (result.case === 'train_step_b8') entry.samples_per_s = batchSize / entry.median_s;
  if (result.memory !== undefined) entry.tfjs_memory = result.memory;
  return entry;
}

/** Assembles the report; a side that did not run is absent from its case and so is its ratio. */
export function buildReport(machine: Record<string, unknown>, results: readonly SideResult[], trainBatch: number): BenchReport {
  const cases: Partial<Record<CaseName, CaseEntry>> = {};
  const unavailable: Record<string, string> = {};
  for (const result of results) {
    if (!result.available) {
      unavailable[`${result.impl}/${result.case}`] = result.reason;
      continue;
    }
    const entry = (cases[result.case] ??= {});
    entry[result.impl] = implEntry(result, trainBatch);
  }
  for (const entry of Object.values(cases)) {
    const ours = entry['clipseg-tfjs'];
    if (ours === undefined) continue;
    if (entry.pytorch !== undefined) entry.ratio_vs_pytorch = ours.median_s / entry.pytorch.median_s;
    if (entry['transformers.js'] !== undefined) entry.ratio_vs_transformers_js = ours.median_s / entry['transformers.js'].median_s;
  }
  const ordered: Partial<Record<CaseName, CaseEntry>> = {};
  for (const name of CASES) if (cases[name] !== undefined) ordered[name] = cases[name];
  return Object.keys(unavailable).length > 0 ? { machine, cases: ordered, unavailable } : { machine, cases: ordered };
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

function fmtSeconds(s: number): string {
  return s >= 10 ? s.toFixed(1) : s >= 1 ? s.toFixed(2) : s.toFixed(3);
}

function cell(summary: Summary | undefined): string {
  if (summary === undefined) return '–';
  return `${fmtSeconds(summary.median_s)} s (${fmtSeconds(summary.min_s)}–${fmtSeconds(summary.max_s)})`;
}

function ratioCell(value: number | undefined): string {
  return value === undefined ? '–' : `${value.toFixed(2)}×`;
}

/** Markdown: end-to-end medians with min–max, peak RSS, ratios; then model-only medians. */
export function renderTables(report: BenchReport): string {
  const lines: string[] = [];
  lines.push(`| case | ${IMPLS.join(' | ')} | ours / pytorch | ours / transformers.js |`);
  lines.push(`|---|${IMPLS.map(() => '---').join('|')}|---|---|`);
  for (const [name, entry] of Object.entries(report.cases) as [CaseName, CaseEntry][]) {
    const cells = IMPLS.map((impl) => cell(entry[impl]));
    lines.push(`| ${name} | ${cells.join(' | ')} | ${ratioCell(entry.ratio_vs_pytorch)} | ${ratioCell(entry.ratio_vs_transformers_js)} |`);
  }
  lines.push('');
  lines.push(`| peak RSS (MB) | ${IMPLS.join(' | ')} | ours / pytorch |`);
  lines.push(`|---|${IMPLS.map(() => '---').join('|')}|---|`);
  for (const [name, entry] of Object.entries(report.cases) as [CaseName, CaseEntry][]) {
    const cells = IMPLS.map((impl) => (entry[impl] === undefined ? '–' : entry[impl].peak_rss_mb.toFixed(0)));
    const ours = entry['clipseg-tfjs'];
    const rss = ours !== undefined && entry.pytorch !== undefined ? ours.peak_rss_mb / entry.pytorch.peak_rss_mb : undefined;
    lines.push(`| ${name} | ${cells.join(' | ')} | ${ratioCell(rss)} |`);
  }
  const modelRows = (Object.entries(report.cases) as [CaseName, CaseEntry][]).filter(([, e]) =>
    IMPLS.some((impl) => e[impl]?.model_only !== undefined),
  );
  if (modelRows.length > 0) {
    lines.push('');
    lines.push(`| model only | ${IMPLS.join(' | ')} |`);
    lines.push(`|---|${IMPLS.map(() => '---').join('|')}|`);
    for (const [name, entry] of modelRows) {
      lines.push(`| ${name} | ${IMPLS.map((impl) => cell(entry[impl]?.model_only)).join(' | ')} |`);
    }
  }
  const train = report.cases.train_step_b8;
  if (train !== undefined) {
    const rates = IMPLS.filter((impl) => train[impl]?.samples_per_s !== undefined).map(
      (impl) => `${impl} ${train[impl]!.samples_per_s!.toFixed(2)}`,
    );
    if (rates.length > 0) lines.push('', `Training throughput (samples/s, batch 8): ${rates.join(', ')}.`);
  }
  if (report.unavailable !== undefined) {
    lines.push('', ...Object.entries(report.unavailable).map(([what, why]) => `- ${what} did not run: ${why}`));
  }
  return lines.join('\n');
}

/** Markdown list: the machine, the load, and each implementation's versions and thread counts. */
export function renderMachine(machine: Record<string, unknown>): string {
  const text = (v: unknown): string => (Array.isArray(v) ? v.join('/') : String(v));
  const lines = [
    `- Machine: ${text(machine.cpu)}, ${text(machine.logical_cores)} logical cores, ${text(machine.memory_gb)} GB, ${text(machine.os)}`,
    `- Run: ${text(machine.date)}, ${text(machine.mode)} mode, ${text(machine.wall_s)} s; load average ${text(machine.load_average_start)} at start, ${text(machine.load_average_end)} at the end (1/5/15 min)`,
  ];
  const impls = (machine.implementations ?? {}) as Record<string, { versions?: Record<string, string>; threads?: Record<string, unknown> }>;
  for (const [impl, details] of Object.entries(impls)) {
    const versions = Object.entries(details.versions ?? {}).map(([k, v]) => `${k} ${v}`);
    const threads = Object.entries(details.threads ?? {}).map(([k, v]) => `${k} ${String(v)}`);
    lines.push(`- ${impl}: ${versions.join(', ')}; threads: ${threads.join(', ')}`);
  }
  return lines.join('\n');
}

export const README_START = '<!-- bench-results:start -->';
export const README_END = '<!-- bench-results:end -->';

/** Replaces the text between the README markers with `body`; the rest of the README is kept as it is. */
export function replaceReadmeSection(readme: string, body: string, source: string): string {
  const start = readme.indexOf(README_START);
  const end = readme.indexOf(README_END);
  if (start < 0 || end < start) {
    throw new FileFormatError(source, `expected the markers ${README_START} and ${README_END}, in that order`);
  }
  return `${readme.slice(0, start + README_START.length)}\n${body.trim()}\n${readme.slice(end)}`;
}
