import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';

/** Bare packages the browser entry may pull in (tfjs itself, and fflate for the shipped vocabulary). */
const BROWSER_PACKAGES = new Set(['@tensorflow/tfjs', 'fflate']);
const SPECIFIER = /(?:^|[\s;])(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|^import\s+['"]([^'"]+)['"]/gm;

/** Every module reachable from `entry` through static and dynamic imports, with the bare specifiers each uses. */
function importGraph(entry: string): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  const queue = [path.resolve(entry)];
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (graph.has(file)) continue;
    const source = readFileSync(file, 'utf8').replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '');
    const bare: string[] = [];
    for (const m of source.matchAll(SPECIFIER)) {
      const spec = (m[1] ?? m[2] ?? m[3])!;
      if (spec.startsWith('.')) queue.push(path.resolve(path.dirname(file), spec.replace(/\.js$/, '.ts')));
      else bare.push(spec);
    }
    graph.set(file, bare);
  }
  return graph;
}

test('the browser entry reaches no Node-only module (no node:*, fs, jimp, commander, native tfjs)', () => {
  const graph = importGraph('src/browser.ts');
  assert.ok(graph.size > 30, `walked ${graph.size} modules`);
  const offenders: string[] = [];
  for (const [file, specs] of graph) {
    for (const spec of specs) {
      const pkg = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
      if (!BROWSER_PACKAGES.has(pkg)) offenders.push(`${path.relative('.', file)} imports '${spec}'`);
    }
  }
  assert.deepEqual(offenders, []);
  for (const file of graph.keys()) assert.ok(!/src[\\/](io|cli|pipeline|train)[\\/]/.test(file), `${file} is Node-side`);
});

test('the walker sees Node imports where they are (it can fail)', () => {
  const node = importGraph('src/index.ts');
  const bare = [...node.values()].flat();
  assert.ok(bare.includes('node:fs') && bare.includes('jimp'));
});

test('the Node entry exposes the public API and registers the loaders behind fromPretrained', async () => {
  const api = await import('../src/index.js');
  for (const name of [
    'ClipSeg',
    'CLIPSegForImageSegmentation',
    'CLIPSegModel',
    'CLIPSegConfig',
    'presetConfig',
    'CLIPSegProcessor',
    'CLIPTokenizer',
    'CLIPSegImageProcessor',
    'makeVisualPrompt',
    'logitsToProbabilities',
    'overlayMasks',
    'ClipSegError',
    'InvalidArgumentError',
    'selectBackend',
    'currentBackend',
    'loadImage',
    'savePng',
    'readSafetensors',
    'writeSafetensors',
    'loadModelFolder',
    'saveModelFolder',
    'readTorchCheckpoint',
    'hubCacheDir',
    'attentionRollout',
    'computeHeatmaps',
    'LruCache',
  ]) {
    assert.ok(name in api, `missing export ${name}`);
  }
  const processor = await api.CLIPSegProcessor.fromPretrained(path.join('test', 'fixtures', 'capture', 'model'));
  assert.deepEqual(processor.imageProcessor.options.size, { height: 64, width: 64 });
  assert.deepEqual(processor.tokenizer.encode('a photo of a cat'), [49406, 320, 1125, 539, 320, 2368, 49407]);
});
