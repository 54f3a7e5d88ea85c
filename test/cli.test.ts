import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { promisify } from 'node:util';
import { CommanderError } from 'commander';
import { ExitCode, errorLine, exitCodeFor, reportError } from '../src/cli/errors.js';
import { buildProgram } from '../src/cli/main.js';
import * as errors from '../src/errors.js';
import { loadImage } from '../src/io/image_io.js';
import { readSafetensors } from '../src/io/safetensors.js';
import { wasmTrapError } from './helpers/wasm_trap.js';

const MODEL = path.join('test', 'fixtures', 'capture', 'model');
const IMAGE = path.join('test', 'fixtures', 'images', 'astronaut_400x380.png');
const SMALL = path.join('test', 'fixtures', 'images', 'coffee_160x100.png');
const work = mkdtempSync(path.join(os.tmpdir(), 'clipseg-cli-'));

after(() => rmSync(work, { recursive: true, force: true }));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function clipseg(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', path.join('src', 'cli', 'main.ts'), ...args], { maxBuffer: 1 << 24 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

/** A failed run: the expected status and exactly one stderr line matching `pattern`, without a stack trace. */
function assertFailure(run: Run, code: number, pattern: RegExp): void {
  assert.equal(run.code, code, `exit status (stderr: ${run.stderr})`);
  const lines = run.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `one line on stderr, got:\n${run.stderr}`);
  assert.match(lines[0]!, /^clipseg: error: /);
  assert.match(lines[0]!, pattern);
  assert.equal(run.stdout, '');
}

test('every subcommand is registered and has help', () => {
  const program = buildProgram();
  const names = program.commands.map((c) => c.name()).sort();
  assert.deepEqual(names, ['convert', 'env', 'eval', 'inspect', 'make-synthetic', 'preprocess', 'segment', 'tokenize', 'train']);
  for (const command of program.commands) {
    const help = command.helpInformation();
    assert.match(help, new RegExp(`^Usage: clipseg ${command.name()} `));
    assert.ok(command.description().length > 10, `${command.name()} has a description`);
  }
  const global = program.helpInformation();
  assert.match(global, /--verbose/);
  assert.match(global, /--backend <name>/);
});

test('declaring the commands and their help does not load tfjs (each command imports it when it runs)', async () => {
  // tfjs keeps its engine in a global when it is first imported; the last line proves that this probe sees it.
  const script = [
    "const { buildProgram } = await import('./src/cli/main.ts');",
    'const program = buildProgram();',
    'for (const command of program.commands) command.helpInformation();',
    'console.log(typeof globalThis._tfengine);',
    "await import('@tensorflow/tfjs');",
    'console.log(typeof globalThis._tfengine);',
  ].join('\n');
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script]);
  assert.deepEqual(stdout.trim().split('\n'), ['undefined', 'object']);
});

test('help, version, usage errors: exit statuses and one-line messages', async () => {
  const [help, segmentHelp, version, unknownCommand, unknownOption, none] = await Promise.all([
    clipseg('--help'),
    clipseg('segment', '--help'),
    clipseg('--version'),
    clipseg('segmnet', 'x.png'),
    clipseg('tokenize', 'a cat', '--bogus'),
    clipseg(),
  ]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /Commands:[\s\S]*segment[\s\S]*make-synthetic/);
  assert.equal(segmentHelp.code, 0);
  assert.match(segmentHelp.stdout, /--prompt <text>[\s\S]*--threshold <t>[\s\S]*--json/);
  assert.equal(version.code, 0);
  assert.equal(version.stdout.trim(), JSON.parse(readFileSync('package.json', 'utf8')).version);
  assertFailure(unknownCommand, ExitCode.USAGE, /unknown command 'segmnet'/);
  assertFailure(unknownOption, ExitCode.USAGE, /unknown option '--bogus'/);
  assert.equal(none.code, ExitCode.USAGE);
  assert.match(none.stderr, /clipseg: error: expected a subcommand/);
});

test('tokenize prints the ids HF gives; --json adds the tokens', async () => {
  const [plain, json] = await Promise.all([clipseg('tokenize', 'a photo of a cat'), clipseg('tokenize', 'a photo of a cat', 'Hello  World!', '--json')]);
  assert.equal(plain.code, 0);
  assert.equal(plain.stdout, '49406 320 1125 539 320 2368 49407\n');
  const parsed = JSON.parse(json.stdout) as { text: string; ids: number[]; tokens: string[] }[];
  assert.deepEqual(parsed[1], { text: 'Hello  World!', ids: [49406, 3306, 1002, 256, 49407], tokens: ['<|startoftext|>', 'hello</w>', 'world</w>', '!</w>', '<|endoftext|>'] });
});

test('segment: bad input fails with the documented status, one line, nothing written', async () => {
  const out = path.join(work, 'never');
  const [missing, noPrompt, threshold, unwritable, noModel, verbose, legend] = await Promise.all([
    clipseg('segment', 'missing.png', '-p', 'a cat', '-m', MODEL, '-o', out),
    clipseg('segment', IMAGE, '-m', MODEL, '-o', out),
    clipseg('segment', IMAGE, '-p', 'a cat', '-t', '1.5', '-m', MODEL, '-o', out),
    clipseg('segment', IMAGE, '-p', 'a cat', '-m', MODEL, '-o', '/dev/null/out'),
    clipseg('segment', IMAGE, '-p', 'a cat', '-m', path.join(work, 'no-model'), '-o', out),
    clipseg('--verbose', 'segment', 'missing.png', '-p', 'a cat', '-m', MODEL, '-o', out),
    clipseg('segment', IMAGE, '-p', 'a cat', '--legend', 'left', '-m', MODEL, '-o', out),
  ]);
  assertFailure(missing, ExitCode.INPUT, /image file not found: missing\.png/);
  assertFailure(noPrompt, ExitCode.USAGE, /at least one --prompt or --visual-prompt/);
  assertFailure(threshold, ExitCode.USAGE, /--threshold.*'1\.5' is invalid.*\[0, 1\]/);
  assertFailure(unwritable, ExitCode.USAGE, /--out: cannot write to the folder \/dev\/null\/out \(\/dev\/null is a file\)/);
  assertFailure(noModel, ExitCode.INPUT, /model folder not found/);
  assertFailure(legend, ExitCode.USAGE, /--legend: expected 'right' or 'over', got 'left'/);
  assert.equal(verbose.code, ExitCode.INPUT);
  assert.match(verbose.stderr, /FileNotFoundError: image file not found[\s\S]*\n\s+at /);
  assert.ok(!existsSync(out), 'no output folder was created');
});

test('segment --json: mask, probability and overlay PNGs with areas, max probabilities and timings', async () => {
  const out = path.join(work, 'segment');
  const run = await clipseg('segment', IMAGE, SMALL, '-p', 'a photo of an astronaut', '-p', 'the sky', '--visual-prompt', SMALL, '--visual-box', '20,10,60,50', '-m', MODEL, '-o', out, '-t', '0.5', '--json');
  assert.equal(run.code, 0, run.stderr);
  const summary = JSON.parse(run.stdout) as {
    threshold: number;
    backend: string;
    timings: { loadSeconds: number; segmentSeconds: number; totalSeconds: number };
    images: { image: string; width: number; height: number; overlay: string; prompts: { prompt: string; mask: string; probabilities: string; area: number; coverage: number; maxProbability: number }[] }[];
  };
  assert.equal(summary.threshold, 0.5);
  assert.equal(summary.images.length, 2);
  assert.ok(summary.timings.totalSeconds >= summary.timings.segmentSeconds && summary.timings.segmentSeconds > 0);
  assert.deepEqual(summary.images[0]!.prompts.map((p) => p.prompt), ['a photo of an astronaut', 'the sky', 'visual: coffee_160x100.png']);
  assert.equal(readdirSync(out).length, 2 * (3 * 2 + 1), 'two PNGs per prompt and one overlay per image, nothing else');
  for (const img of summary.images) {
    const overlay = await loadImage(img.overlay);
    assert.ok(overlay.width > img.width && overlay.height >= img.height, 'the legend strip is added beside the image');
    for (const p of img.prompts) {
      const mask = await loadImage(p.mask);
      const prob = await loadImage(p.probabilities);
      assert.deepEqual([mask.width, mask.height, prob.width, prob.height], [img.width, img.height, img.width, img.height]);
      let area = 0;
      let brightest = 0;
      for (let i = 0; i < mask.width * mask.height; i++) {
        const v = mask.data[i * mask.channels]!;
        assert.ok(v === 0 || v === 255, 'masks are binary');
        area += v === 255 ? 1 : 0;
        brightest = Math.max(brightest, prob.data[i * prob.channels]!);
      }
      assert.equal(p.area, area);
      assert.ok(Math.abs(p.coverage - area / (img.width * img.height)) < 1e-12);
      assert.equal(brightest, Math.round(p.maxProbability * 255));
    }
  }
  assert.ok(summary.images.some((img) => img.prompts.some((p) => p.area > 0)) && summary.images.some((img) => img.prompts.some((p) => p.area < img.width * img.height)));
});

test('preprocess writes what the HF processor gives; inspect --capture on it equals PyTorch hooks', async () => {
  const inputs = path.join(work, 'inputs.safetensors');
  const captured = path.join(work, 'captured.safetensors');
  const cases = JSON.parse(readFileSync(path.join('test', 'fixtures', 'capture', 'cases.json'), 'utf8')) as { prompts: string[] };
  const pre = await clipseg('preprocess', IMAGE, '-m', MODEL, ...cases.prompts.flatMap((p) => ['-p', p]), '-o', inputs);
  assert.equal(pre.code, 0, pre.stderr);
  const reference = await readSafetensors(path.join('test', 'fixtures', 'capture', 'text.safetensors'));
  const written = await readSafetensors(inputs);
  assert.deepEqual(written.keys().sort(), ['attention_mask', 'input_ids', 'pixel_values']);
  assert.deepEqual(Array.from(written.getFloat32('pixel_values')), Array.from(reference.getFloat32('pixel_values')));
  for (const key of ['input_ids', 'attention_mask']) {
    assert.equal(written.info(key).dtype, 'I64');
    assert.deepEqual(Buffer.from(written.getBytes(key)), Buffer.from(reference.getBytes(key)), key);
  }
  const run = await clipseg('inspect', '--model', MODEL, '--inputs', inputs, '--capture', 'clip.vision_model.**', 'decoder.layers.*', 'decoder.layers.*:input', '--out', captured);
  assert.equal(run.code, 0, run.stderr);
  const got = await readSafetensors(captured);
  const compared = reference.keys().filter((k) => /^(clip\.vision_model\.|decoder\.layers\.\d+(:input)?$)/.test(k));
  assert.ok(compared.length > 40);
  for (const key of [...compared, 'logits']) {
    assert.deepEqual(got.info(key).shape, reference.info(key).shape, key);
    const a = got.getFloat32(key);
    const b = reference.getFloat32(key);
    let worst = 0;
    for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
    assert.ok(worst < 1e-4, `${key}: max diff ${worst}`);
  }
});

test('inspect --image --heatmaps draws attention and decoder maps over the image', async () => {
  const dir = path.join(work, 'heatmaps');
  const run = await clipseg('inspect', '--model', MODEL, '--image', SMALL, '-p', 'a cup', '--heatmaps', dir, '--json');
  assert.equal(run.code, 0, run.stderr);
  const summary = JSON.parse(run.stdout) as { heatmaps: string[]; tensors: unknown[] };
  assert.equal(summary.heatmaps.length, 3 * 5 + 1 + 3);
  assert.deepEqual(summary.tensors, []);
  const rollout = await loadImage(path.join(dir, 'vision_rollout.png'));
  assert.deepEqual([rollout.width, rollout.height], [160, 100]);
  const bad = await clipseg('inspect', '--model', MODEL, '--image', SMALL, '--out', path.join(work, 'x.safetensors'));
  assertFailure(bad, ExitCode.USAGE, /--image needs at least one --prompt/);
});

test('env --json reports tfjs, the backend and the cache folder', async () => {
  const run = await clipseg('--backend', 'cpu', 'env', '--json');
  assert.equal(run.code, 0, run.stderr);
  const report = JSON.parse(run.stdout) as { tfjs: string; backends: { chosen: string; registered: string[] }; nativePackages: { name: string; installed: boolean; hint?: string }[]; cache: { hub: string } };
  assert.equal(report.tfjs, '4.22.0');
  assert.equal(report.backends.chosen, 'cpu');
  assert.ok(report.backends.registered.includes('cpu'));
  const gpu = report.nativePackages.find((p) => p.name === '@tensorflow/tfjs-node-gpu')!;
  if (!gpu.installed) assert.match(gpu.hint!, /npm install @tensorflow\/tfjs-node-gpu.*CUDA 11\.2.*cuDNN 8\.1/);
  assert.ok(path.isAbsolute(report.cache.hub));
});

test('error mapping: each error class has its documented exit status and a single line', () => {
  const cases: [unknown, number][] = [
    [new errors.InvalidArgumentError('x'), ExitCode.USAGE],
    [new CommanderError(1, 'commander.unknownOption', "error: unknown option '--x'"), ExitCode.USAGE],
    [new CommanderError(0, 'commander.helpDisplayed', '(outputHelp)'), ExitCode.OK],
    [new errors.FileNotFoundError('a.png'), ExitCode.INPUT],
    [new errors.FileFormatError('a.png', 'bad'), ExitCode.INPUT],
    [new errors.ImageDecodeError('a.png', 'bad'), ExitCode.INPUT],
    [new errors.ShapeError('x', '[1]', [2]), ExitCode.INPUT],
    [new errors.DatasetError('x'), ExitCode.INPUT],
    [new errors.ConfigError('x'), ExitCode.MODEL],
    [new errors.CheckpointKeyError('x'), ExitCode.MODEL],
    [new errors.UnsafePickleError('f', 'posix.system'), ExitCode.MODEL],
    [new errors.UnsupportedError('x'), ExitCode.MODEL],
    [new errors.BackendError('x'), ExitCode.BACKEND],
    [new errors.NetworkError('x'), ExitCode.NETWORK],
    [new errors.TrainingError('x'), ExitCode.TRAINING],
    [Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES', path: '/x' }), ExitCode.INPUT],
    [new TypeError('boom'), ExitCode.INTERNAL],
    [wasmTrapError('Aborted()'), ExitCode.BACKEND],
  ];
  for (const [err, code] of cases) assert.equal(exitCodeFor(err), code, String(err));
  assert.equal(errorLine(new errors.ConfigError('first\n  second')), 'first second');
  assert.equal(errorLine(Object.assign(new Error('x'), { code: 'EACCES', path: '/x' })), '/x: permission denied');
  assert.match(errorLine(new TypeError('boom')), /internal error: boom \(run again with --verbose/);
  assert.equal(
    errorLine(wasmTrapError('Aborted(). Build with -sASSERTIONS for more info.')),
    'the wasm backend failed (Aborted().), most likely out of memory (it has at most 4 GB); smaller images, batches or prompt lists need less memory',
  );
  let text = '';
  const status = reportError(new errors.NetworkError('offline'), { verbose: false, write: (t) => (text += t) });
  assert.equal(status, ExitCode.NETWORK);
  assert.equal(text, 'clipseg: error: offline\n');
});
