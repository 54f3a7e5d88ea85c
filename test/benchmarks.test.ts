import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidArgumentError, FileFormatError } from '../src/errors.js';
import { byShapeKey, groupKernels, renderGroups } from '../benchmarks/kernel_stats.js';
import { README_END, README_START, buildReport, renderMachine, renderTables, replaceReadmeSection, summarize } from '../benchmarks/report.js';
import { parseSideArgs, type SideResult } from '../benchmarks/side_io.js';

function measured(impl: 'clipseg-tfjs' | 'pytorch' | 'transformers.js', name: 'segment_1x1' | 'train_step_b8', e2e: number[], rss: number, model?: number[]): SideResult {
  return {
    impl,
    case: name,
    available: true,
    e2e_s: e2e,
    ...(model !== undefined ? { model_s: model } : {}),
    peak_rss_mb: rss,
    versions: { v: '1' },
    threads: { t: 2 },
  };
}

describe('benchmark statistics', () => {
  it('summarize: median of odd and even counts, min and max, whatever the order', () => {
    assert.deepEqual(summarize([3, 1, 2]), { median_s: 2, min_s: 1, max_s: 3, runs: 3 });
    assert.deepEqual(summarize([4, 1, 3, 2]), { median_s: 2.5, min_s: 1, max_s: 4, runs: 4 });
    assert.deepEqual(summarize([0.5]), { median_s: 0.5, min_s: 0.5, max_s: 0.5, runs: 1 });
  });

  it('summarize: no samples is an argument error', () => {
    assert.throws(() => summarize([]), InvalidArgumentError);
  });
});

describe('benchmark report', () => {
  const results: SideResult[] = [
    measured('clipseg-tfjs', 'segment_1x1', [3, 2, 4, 2.5, 3.5], 900, [2, 1.5, 3, 2, 2.5]),
    measured('pytorch', 'segment_1x1', [1, 1.2, 0.8, 1, 1.1], 600),
    { impl: 'transformers.js', case: 'segment_1x1', available: false, reason: 'not installed' },
    measured('clipseg-tfjs', 'train_step_b8', [4, 4, 4, 4, 4], 2000),
    measured('pytorch', 'train_step_b8', [2, 2, 2, 2, 2], 1500),
  ];
  const report = buildReport({ cpu: 'test' }, results, 8);

  it('ratios are ours over theirs on medians; an absent side has neither entry nor ratio', () => {
    const entry = report.cases.segment_1x1!;
    assert.equal(entry['clipseg-tfjs']!.median_s, 3);
    assert.equal(entry.pytorch!.median_s, 1);
    assert.equal(entry.ratio_vs_pytorch, 3);
    assert.equal(entry['transformers.js'], undefined);
    assert.equal('ratio_vs_transformers_js' in entry, false);
    assert.equal(report.unavailable!['transformers.js/segment_1x1'], 'not installed');
  });

  it('keeps model-only timings, peak RSS and training throughput', () => {
    const ours = report.cases.segment_1x1!['clipseg-tfjs']!;
    assert.deepEqual(ours.model_only, { median_s: 2, min_s: 1.5, max_s: 3, runs: 5 });
    assert.equal(ours.peak_rss_mb, 900);
    assert.equal(report.cases.train_step_b8!['clipseg-tfjs']!.samples_per_s, 2);
    assert.equal(report.cases.train_step_b8!.pytorch!.samples_per_s, 4);
    assert.equal(report.cases.train_step_b8!.ratio_vs_pytorch, 2);
  });

  it('cases appear in the fixed order whatever order the results came in', () => {
    const reversed = buildReport({}, [...results].reverse(), 8);
    assert.deepEqual(Object.keys(reversed.cases), ['segment_1x1', 'train_step_b8']);
  });

  it('the JSON has the documented shape', () => {
    const json = JSON.parse(JSON.stringify(report)) as { machine: unknown; cases: Record<string, Record<string, unknown>> };
    assert.deepEqual(json.machine, { cpu: 'test' });
    const entry = json.cases.segment_1x1!;
    for (const key of ['median_s', 'min_s', 'max_s', 'runs', 'peak_rss_mb']) assert.ok(key in (entry['clipseg-tfjs'] as object), key);
    assert.equal(typeof entry.ratio_vs_pytorch, 'number');
  });

  it('renders the tables with medians, ranges, ratios and the reason a side did not run', () => {
    const text = renderTables(report);
    assert.match(text, /\| segment_1x1 \| 3\.00 s \(2\.00–4\.00\) \| 1\.00 s \(0\.800–1\.20\) \| – \| 3\.00× \| – \|/);
    assert.match(text, /\| segment_1x1 \| 900 \| 600 \| – \| 1\.50× \|/);
    assert.match(text, /\| segment_1x1 \| 2\.00 s \(1\.50–3\.00\) \| – \| – \|/);
    assert.match(text, /Training throughput \(samples\/s, batch 8\): clipseg-tfjs 2\.00, pytorch 4\.00\./);
    assert.match(text, /- transformers\.js\/segment_1x1 did not run: not installed/);
  });

  it('renders the machine and each side\'s versions and threads', () => {
    const text = renderMachine({
      cpu: 'Xeon',
      logical_cores: 2,
      memory_gb: 24,
      os: 'Linux',
      date: 'today',
      mode: 'quick',
      wall_s: 300,
      load_average_start: [1, 2, 3],
      load_average_end: [4, 5, 6],
      implementations: { pytorch: { versions: { torch: '2.13.0' }, threads: { torch_intra_op: 2 } } },
    });
    assert.match(text, /Xeon, 2 logical cores, 24 GB, Linux/);
    assert.match(text, /load average 1\/2\/3 at start, 4\/5\/6 at the end/);
    assert.match(text, /- pytorch: torch 2\.13\.0; threads: torch_intra_op 2/);
  });
});

describe('README section', () => {
  const readme = `# Title\n\nintro\n\n${README_START}\nold table\n${README_END}\n\n## After\ntext\n`;

  it('replaces only the text between the markers', () => {
    const out = replaceReadmeSection(readme, '| new |\n', 'README.md');
    assert.equal(out, `# Title\n\nintro\n\n${README_START}\n| new |\n${README_END}\n\n## After\ntext\n`);
    assert.equal(replaceReadmeSection(out, '| newer |', 'README.md').includes('| new |\n'), false);
  });

  it('a README without the markers is a file format error naming the file', () => {
    assert.throws(() => replaceReadmeSection('# no markers\n', 'x', 'benchmarks/README.md'), (err: unknown) => {
      assert.ok(err instanceof FileFormatError);
      assert.match(err.message, /benchmarks\/README\.md/);
      return true;
    });
    assert.throws(() => replaceReadmeSection(`${README_END}\n${README_START}\n`, 'x', 'R.md'), FileFormatError);
  });
});

describe('side arguments', () => {
  it('parses the contract and applies defaults', () => {
    assert.deepEqual(parseSideArgs(['--case', 'load', '--out', '/tmp/x.json']), { case: 'load', warmup: 1, runs: 5, out: '/tmp/x.json', wasmThreads: 0 });
    assert.deepEqual(parseSideArgs(['--case', 'segment_1x8', '--warmup', '2', '--runs', '10', '--out', 'o', '--wasm-threads', '2']), {
      case: 'segment_1x8',
      warmup: 2,
      runs: 10,
      out: 'o',
      wasmThreads: 2,
    });
  });

  it('rejects unknown cases, missing output, bad counts and dangling keys with argument errors', () => {
    assert.throws(() => parseSideArgs(['--case', 'segment_2x2', '--out', 'o']), /--case: expected one of/);
    assert.throws(() => parseSideArgs(['--case', 'load']), /--out/);
    assert.throws(() => parseSideArgs(['--case', 'load', '--out', 'o', '--runs', '-1']), /--runs: expected a non-negative integer, got -1/);
    assert.throws(() => parseSideArgs(['--case', 'load', '--out']), InvalidArgumentError);
  });
});

describe('kernel profile aggregation', () => {
  const records = [
    { name: '_FusedMatMul', inputShapes: [[485, 768], [768, 3072]], ms: 30 },
    { name: 'Slice', inputShapes: [[485, 768]], ms: 2 },
    { name: '_FusedMatMul', inputShapes: [[485, 768], [768, 768]], ms: 10 },
    { name: '_FusedMatMul', inputShapes: [[485, 768], [768, 3072]], ms: 28 },
    { name: 'Slice', inputShapes: [[485, 768]], ms: 3 },
  ];

  it('sums calls and time per kernel, largest first', () => {
    assert.deepEqual(groupKernels(records, (r) => r.name), [
      { key: '_FusedMatMul', calls: 3, ms: 68 },
      { key: 'Slice', calls: 2, ms: 5 },
    ]);
  });

  it('separates kernels by input shapes', () => {
    const groups = groupKernels(records, byShapeKey);
    assert.deepEqual(groups.map((g) => [g.key, g.calls, g.ms]), [
      ['_FusedMatMul [485,768] [768,3072]', 2, 58],
      ['_FusedMatMul [485,768] [768,768]', 1, 10],
      ['Slice [485,768]', 2, 5],
    ]);
  });

  it('renders shares of the total and keeps only the top rows', () => {
    const text = renderGroups('kernel', groupKernels(records, (r) => r.name), 73, 1);
    assert.equal(text, '| kernel | calls | ms | share |\n|---|---|---|---|\n| _FusedMatMul | 3 | 68.0 | 93.2% |');
  });
});
