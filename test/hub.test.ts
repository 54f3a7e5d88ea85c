import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import * as tf from '@tensorflow/tfjs';
import { FileFormatError, FileNotFoundError, InvalidArgumentError, NetworkError } from '../src/errors.js';
import { hubCacheDir, hubEndpoint, hubFile, hubOffline, isHubRepoId, repoCacheFolder } from '../src/io/hub.js';
import { readPretrained } from '../src/io/pretrained.js';
import { createProgress, formatBytes, progressEnabled } from '../src/io/progress.js';
import { convertCheckpoint } from '../weights-converter/index.js';
import { CLIPSegForImageSegmentation } from '../src/models/clipseg_segmentation.js';
import { disposeOutput } from '../src/models/tidy.js';
import { CLIPSegProcessor } from '../src/processor/processor.js';
import { assertClose } from './helpers/assert_close.js';
import { useBackend } from './helpers/backends.js';
import { readFixture } from './helpers/fixtures.js';
import { disposeInputs, segmentationInputs } from './helpers/model_fixtures.js';
import { scratchFolders } from './helpers/scratch.js';

const FIXTURE = path.join(import.meta.dirname, 'fixtures', 'checkpoints', 'hf', 'plain');
const REPO = 'test-org/tiny-clipseg';
const MAIN = 'a'.repeat(39) + '1';
const DEV = 'b'.repeat(39) + '2';

interface ServedFile {
  content: Uint8Array;
  lfs: boolean;
}

/** A loopback server answering like the hub's file endpoints (resolve with HEAD/GET, LFS redirects to a CDN path). */
class FakeHub {
  readonly requests: string[] = [];
  corruptCdn = false;
  private readonly server: http.Server;
  private readonly repos = new Map<string, { refs: Map<string, string>; commits: Map<string, Map<string, ServedFile>> }>();
  private readonly cdn = new Map<string, Uint8Array>();

  constructor() {
    this.server = http.createServer((req, res) => this.handle(req, res));
  }

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  stop(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  publish(repo: string, ref: string, commit: string, files: Record<string, ServedFile>): void {
    const entry = this.repos.get(repo) ?? { refs: new Map(), commits: new Map() };
    this.repos.set(repo, entry);
    entry.refs.set(ref, commit);
    entry.commits.set(commit, new Map(Object.entries(files)));
    for (const file of Object.values(files)) if (file.lfs) this.cdn.set(sha256(file.content), file.content);
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://localhost');
    this.requests.push(`${req.method} ${url.pathname}`);
    const send = (status: number, headers: Record<string, string | number>, body?: Uint8Array): void => {
      res.writeHead(status, headers);
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (url.pathname.startsWith('/cdn/')) {
      const content = this.cdn.get(url.pathname.slice(5));
      if (content === undefined) return send(404, {});
      const body = this.corruptCdn ? Uint8Array.from(content, (b, i) => (i === 0 ? b ^ 1 : b)) : content;
      return send(200, { 'content-length': body.length }, body);
    }
    const match = /^\/([^/]+)\/([^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    if (match === null) return send(404, {});
    const [, org, name, revision, file] = match as unknown as [string, string, string, string, string];
    if (`${org}/${name}` === 'old-org/tiny') {
      return send(307, { location: `/${REPO}/resolve/${revision}/${file}` });
    }
    const repo = this.repos.get(`${org}/${name}`);
    if (repo === undefined) return send(401, { 'x-error-code': 'RepositoryNotFound' });
    const rev = decodeURIComponent(revision);
    const commit = repo.refs.get(rev) ?? (repo.commits.has(rev) ? rev : undefined);
    if (commit === undefined) return send(404, { 'x-error-code': 'RevisionNotFound' });
    const served = repo.commits.get(commit)!.get(decodeURIComponent(file));
    if (served === undefined) return send(404, { 'x-error-code': 'EntryNotFound', 'x-repo-commit': commit });
    if (served.lfs) {
      const sha = sha256(served.content);
      return send(302, {
        location: `http://${req.headers.host}/cdn/${sha}`,
        'x-linked-etag': `"${sha}"`,
        'x-linked-size': served.content.length,
        'x-repo-commit': commit,
        etag: '"not-the-content-hash"',
      });
    }
    const gitSha = createHash('sha1').update(`blob ${served.content.length}\0`).update(served.content).digest('hex');
    send(200, { etag: `"${gitSha}"`, 'x-repo-commit': commit, 'content-length': served.content.length }, served.content);
  }
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

const hub = new FakeHub();
const endpoint = await hub.start();
after(() => hub.stop());

const config = new Uint8Array(await fs.readFile(path.join(FIXTURE, 'config.json')));
const weights = new Uint8Array(await fs.readFile(path.join(FIXTURE, 'model.safetensors')));
const devConfig = new TextEncoder().encode('{"model_type": "clipseg", "reduce_dim": 16}\n');
hub.publish(REPO, 'main', MAIN, { 'config.json': { content: config, lfs: false }, 'model.safetensors': { content: weights, lfs: true }, 'sub/dir/notes.txt': { content: new TextEncoder().encode('hi'), lfs: false } });
hub.publish(REPO, 'dev', DEV, { 'config.json': { content: devConfig, lfs: false } });

const tempCache = scratchFolders('clipseg-hub-');

test('downloads land in the huggingface_hub cache layout: blobs by ETag, refs, relative snapshot symlinks', async () => {
  const cacheDir = await tempCache();
  const options = { cacheDir, endpoint, offline: false, progress: false };
  const configPath = await hubFile(REPO, 'config.json', options);
  const weightsPath = await hubFile(REPO, 'model.safetensors', options);
  const nested = await hubFile(REPO, 'sub/dir/notes.txt', options);
  const storage = repoCacheFolder(REPO, cacheDir);
  assert.equal(storage, path.join(cacheDir, 'models--test-org--tiny-clipseg'));
  assert.equal(configPath, path.join(storage, 'snapshots', MAIN, 'config.json'));
  assert.equal(weightsPath, path.join(storage, 'snapshots', MAIN, 'model.safetensors'));
  assert.equal(await fs.readFile(path.join(storage, 'refs', 'main'), 'utf8'), MAIN);
  assert.equal(await fs.readlink(weightsPath!), path.join('..', '..', 'blobs', sha256(weights)));
  assert.equal(await fs.readlink(nested!), path.join('..', '..', '..', '..', 'blobs', createHash('sha1').update('blob 2\0hi').digest('hex')));
  assert.deepEqual(new Uint8Array(await fs.readFile(weightsPath!)), weights);
  assert.deepEqual(new Uint8Array(await fs.readFile(configPath!)), config);
  const blobs = (await fs.readdir(path.join(storage, 'blobs'))).sort();
  assert.equal(blobs.length, 3, `no temporary files are left: ${blobs.join(', ')}`);
});

test('a cached file costs one HEAD and no download; offline mode makes no request at all', async () => {
  const cacheDir = await tempCache();
  const options = { cacheDir, endpoint, offline: false, progress: false };
  await hubFile(REPO, 'model.safetensors', options);
  hub.requests.length = 0;
  const again = await hubFile(REPO, 'model.safetensors', options);
  assert.deepEqual(hub.requests, [`HEAD /${REPO}/resolve/main/model.safetensors`]);
  hub.requests.length = 0;
  const offline = await hubFile(REPO, 'model.safetensors', { ...options, offline: true });
  assert.equal(offline, again);
  assert.deepEqual(hub.requests, []);
  await assert.rejects(hubFile(REPO, 'config.json', { ...options, offline: true }), (e: unknown) => e instanceof FileNotFoundError && /offline mode/.test(e.message));
  await assert.rejects(hubFile(REPO, 'model.safetensors', { ...options, offline: true, revision: 'dev' }), FileNotFoundError);
});

test('revisions: branches resolve through refs/, commit hashes address snapshots directly', async () => {
  const cacheDir = await tempCache();
  const options = { cacheDir, endpoint, offline: false, progress: false };
  const dev = await hubFile(REPO, 'config.json', { ...options, revision: 'dev' });
  assert.equal(dev, path.join(repoCacheFolder(REPO, cacheDir), 'snapshots', DEV, 'config.json'));
  assert.equal(await fs.readFile(dev!, 'utf8'), new TextDecoder().decode(devConfig));
  const byCommit = await hubFile(REPO, 'config.json', { ...options, revision: DEV, offline: true });
  assert.equal(byCommit, dev);
  await assert.rejects(hubFile(REPO, 'config.json', { ...options, revision: 'nope' }), (e: unknown) => e instanceof FileNotFoundError && /hub revision/.test(e.message));
});

test('a missing file is undefined and remembered in .no_exist, so offline mode knows it too', async () => {
  const cacheDir = await tempCache();
  const options = { cacheDir, endpoint, offline: false, progress: false };
  assert.equal(await hubFile(REPO, 'pytorch_model.bin', options), undefined);
  const marker = path.join(repoCacheFolder(REPO, cacheDir), '.no_exist', MAIN, 'pytorch_model.bin');
  assert.equal((await fs.stat(marker)).size, 0);
  hub.requests.length = 0;
  assert.equal(await hubFile(REPO, 'pytorch_model.bin', { ...options, offline: true }), undefined);
  assert.deepEqual(hub.requests, []);
});

test('unknown repositories, renamed ones (relative redirects) and bad arguments', async () => {
  const cacheDir = await tempCache();
  const options = { cacheDir, endpoint, offline: false, progress: false };
  await assert.rejects(hubFile('nobody/nothing', 'config.json', options), (e: unknown) => e instanceof FileNotFoundError && /hub repository/.test(e.message));
  const renamed = await hubFile('old-org/tiny', 'config.json', options);
  assert.deepEqual(new Uint8Array(await fs.readFile(renamed!)), config);
  await assert.rejects(hubFile(REPO, '../escape', options), InvalidArgumentError);
  await assert.rejects(hubFile('not a repo', 'config.json', options), InvalidArgumentError);
  await assert.rejects(hubFile(REPO, 'config.json', { ...options, revision: '../x' }), InvalidArgumentError);
});

test('a download whose SHA-256 differs from the LFS ETag is rejected and leaves no blob', async () => {
  const cacheDir = await tempCache();
  hub.corruptCdn = true;
  try {
    await assert.rejects(hubFile(REPO, 'model.safetensors', { cacheDir, endpoint, offline: false, progress: false }), (e: unknown) => e instanceof FileFormatError && /SHA-256/.test(e.message));
  } finally {
    hub.corruptCdn = false;
  }
  const blobs = await fs.readdir(path.join(repoCacheFolder(REPO, cacheDir), 'blobs'));
  assert.deepEqual(blobs, []);
});

test('an unreachable hub falls back to the cache, and is a NetworkError when nothing is cached', async () => {
  const cacheDir = await tempCache();
  const options = { cacheDir, endpoint, offline: false, progress: false };
  const cached = await hubFile(REPO, 'config.json', options);
  const dead = 'http://127.0.0.1:1';
  assert.equal(await hubFile(REPO, 'config.json', { ...options, endpoint: dead }), cached);
  await assert.rejects(hubFile(REPO, 'model.safetensors', { ...options, endpoint: dead }), NetworkError);
});

test('cache folder, endpoint and offline flag follow the huggingface_hub environment variables', () => {
  const home = os.homedir();
  assert.equal(hubCacheDir({}), path.join(home, '.cache', 'huggingface', 'hub'));
  assert.equal(hubCacheDir({ XDG_CACHE_HOME: '/x' }), path.join('/x', 'huggingface', 'hub'));
  assert.equal(hubCacheDir({ HF_HOME: '/h', XDG_CACHE_HOME: '/x' }), path.join('/h', 'hub'));
  assert.equal(hubCacheDir({ HF_HOME: '~/hf' }), path.join(home, 'hf', 'hub'));
  assert.equal(hubCacheDir({ HF_HUB_CACHE: '/c', HF_HOME: '/h' }), '/c');
  assert.equal(hubCacheDir({ HUGGINGFACE_HUB_CACHE: '/legacy', HF_HOME: '/h' }), '/legacy');
  assert.equal(hubEndpoint({}), 'https://huggingface.co');
  assert.equal(hubEndpoint({ HF_ENDPOINT: 'https://mirror.example/' }), 'https://mirror.example');
  for (const on of ['1', 'true', 'YES', 'on']) assert.equal(hubOffline({ HF_HUB_OFFLINE: on }), true, on);
  for (const off of ['', '0', 'false', undefined]) assert.equal(hubOffline({ HF_HUB_OFFLINE: off }), false, String(off));
  assert.equal(isHubRepoId('CIDAS/clipseg-rd64-refined'), true);
  assert.equal(isHubRepoId('gpt2'), true);
  for (const bad of ['./model', '/abs/path', 'a/b/c', '../x', 'org/..', 'a b/c', '']) assert.equal(isHubRepoId(bad), false, bad);
});

// ---- fromPretrained: local folders and files in every weights container, and hub ids through the cache ----

const CK = (...parts: string[]): string => path.join(import.meta.dirname, 'fixtures', 'checkpoints', ...parts);
const BIN_REPO = 'test-org/tiny-clipseg-bin';
const SHARDED_REPO = 'test-org/tiny-clipseg-sharded';
const BIN_COMMIT = 'c'.repeat(39) + '3';
const SHARDED_COMMIT = 'd'.repeat(39) + '4';

async function servedFolder(dir: string, lfs: (name: string) => boolean): Promise<Record<string, ServedFile>> {
  const files: Record<string, ServedFile> = {};
  for (const name of await fs.readdir(dir)) files[name] = { content: new Uint8Array(await fs.readFile(path.join(dir, name))), lfs: lfs(name) };
  return files;
}
const isWeights = (name: string): boolean => /\.(safetensors|bin)$/.test(name);
hub.publish(BIN_REPO, 'main', BIN_COMMIT, await servedFolder(CK('hf', 'plain-bin'), isWeights));
hub.publish(SHARDED_REPO, 'main', SHARDED_COMMIT, await servedFolder(CK('hf', 'plain-sharded'), isWeights));

/** Loads `source` and checks its outputs against transformers' for the hf/plain fixture inputs. */
async function assertLoadsLikeTransformers(source: string, options: Record<string, unknown> = {}): Promise<void> {
  const before = tf.memory().numTensors;
  const model = await CLIPSegForImageSegmentation.fromPretrained(source, options);
  const inputs = segmentationInputs(readFixture('checkpoints', 'hf', 'plain', 'inputs.safetensors'));
  const expected = readFixture('checkpoints', 'hf', 'plain', 'outputs.safetensors');
  const out = model.forward(inputs);
  assertClose(out.logits, expected.getFloat32('logits'), `${source} logits`, { shape: expected.info('logits').shape });
  disposeOutput(out);
  disposeInputs(inputs);
  model.dispose();
  assert.equal(tf.memory().numTensors, before, `${source}: no tensors leak`);
}

test('fromPretrained reads folders and files holding safetensors, sharded safetensors, pytorch_model.bin (zip and legacy)', async () => {
  await useBackend('wasm');
  for (const source of [CK('hf', 'plain'), CK('hf', 'plain-bin'), CK('hf', 'plain-legacy'), CK('hf', 'plain-sharded'), CK('hf', 'plain-bin', 'pytorch_model.bin')]) {
    await assertLoadsLikeTransformers(source);
  }
  const files = await readPretrained(CK('hf', 'plain-bin'));
  assert.equal(files.layout, 'hf');
  await assert.rejects(CLIPSegForImageSegmentation.fromPretrained(CK('malicious')), FileNotFoundError);
});

test('fromPretrained on hub ids: downloads config and weights once, then works offline; .bin and sharded repos too', async () => {
  await useBackend('wasm');
  const cacheDir = await tempCache();
  const options = { cacheDir, endpoint, progress: false, offline: false };
  for (const repo of [REPO, BIN_REPO, SHARDED_REPO]) await assertLoadsLikeTransformers(repo, options);
  hub.requests.length = 0;
  for (const repo of [REPO, BIN_REPO, SHARDED_REPO]) await assertLoadsLikeTransformers(repo, { ...options, offline: true });
  assert.deepEqual(hub.requests, [], 'offline mode makes no request');
  const binSnapshot = path.join(repoCacheFolder(BIN_REPO, cacheDir), 'snapshots', BIN_COMMIT);
  assert.deepEqual((await fs.readdir(binSnapshot)).sort(), ['config.json', 'pytorch_model.bin'], 'only what the model needs is fetched');
  await assert.rejects(CLIPSegForImageSegmentation.fromPretrained(`${REPO}@dev`, options), (e: unknown) => e instanceof FileNotFoundError && /model weights on the hub/.test(e.message));
  await assert.rejects(CLIPSegForImageSegmentation.fromPretrained(`${REPO}@dev`, { ...options, revision: 'main' }), InvalidArgumentError);
  await assert.rejects(CLIPSegForImageSegmentation.fromPretrained(REPO, { ...options, offline: 'yes' }), (e: unknown) => e instanceof InvalidArgumentError && /options\.offline/.test(e.message));
});

test('fromPretrained follows HF_ENDPOINT, HF_HUB_CACHE and HF_HUB_OFFLINE; the processor comes from the same repo', async () => {
  await useBackend('wasm');
  const cacheDir = await tempCache();
  const saved = { HF_ENDPOINT: process.env.HF_ENDPOINT, HF_HUB_CACHE: process.env.HF_HUB_CACHE, HF_HUB_OFFLINE: process.env.HF_HUB_OFFLINE };
  try {
    process.env.HF_ENDPOINT = endpoint;
    process.env.HF_HUB_CACHE = cacheDir;
    delete process.env.HF_HUB_OFFLINE;
    await assertLoadsLikeTransformers(BIN_REPO, { progress: false });
    const processor = await CLIPSegProcessor.fromPretrained(BIN_REPO);
    const vocab = JSON.parse(await fs.readFile(CK('hf', 'plain-bin', 'vocab.json'), 'utf8')) as Record<string, number>;
    assert.deepEqual(processor.tokenizer.encode('a cat'), [vocab['<|startoftext|>'], vocab['a</w>'], vocab['cat</w>'], vocab['<|endoftext|>']]);
    assert.deepEqual(processor.imageProcessor.options.size, { height: 24, width: 24 }, 'preprocessor_config.json of the repo');
    process.env.HF_HUB_OFFLINE = '1';
    hub.requests.length = 0;
    await assertLoadsLikeTransformers(BIN_REPO);
    assert.deepEqual(hub.requests, []);
  } finally {
    for (const [key, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  }
});

test('progress bars draw only on terminals, in human sizes, and clear themselves', async () => {
  const written: string[] = [];
  const terminal = Object.assign(new Writable({ write: (chunk: Buffer, _e: string, done: () => void) => (written.push(String(chunk)), done()) }), {
    isTTY: true,
    columns: 100,
    cursorTo: () => true,
    clearLine: () => true,
    moveCursor: () => true,
  });
  const bar = createProgress('model.safetensors', 2048, { enabled: true, stream: terminal });
  bar.tick(1024);
  bar.tick(1024);
  bar.done();
  const text = written.join('');
  assert.match(text, /model\.safetensors \[-+\] 0% \| 0 B \/ 2\.0 kB/);
  assert.match(text, /model\.safetensors \[=+\] 100% \| 2\.0 kB \/ 2\.0 kB/);
  assert.ok(text.endsWith('\u001b[2K'), 'the bar line is cleared at the end');
  assert.equal(progressEnabled({}), process.stderr.isTTY === true);
  assert.equal(progressEnabled({ HF_HUB_DISABLE_PROGRESS_BARS: '1' }), false);
  assert.deepEqual([0, 1023, 1024, 1536 * 1024, 603047096, 3 * 2 ** 40].map(formatBytes), ['0 B', '1023 B', '1.0 kB', '1.5 MB', '575.1 MB', '3.0 TB']);
});

test('convert takes a hub id: the repo is fetched into the cache, then converted like a local folder', async () => {
  await useBackend('wasm');
  const cacheDir = await tempCache();
  const out = path.join(cacheDir, 'converted');
  const saved = { HF_ENDPOINT: process.env.HF_ENDPOINT, HF_HUB_CACHE: process.env.HF_HUB_CACHE, HF_HUB_OFFLINE: process.env.HF_HUB_OFFLINE };
  try {
    process.env.HF_ENDPOINT = endpoint;
    process.env.HF_HUB_CACHE = cacheDir;
    delete process.env.HF_HUB_OFFLINE;
    const summary = await convertCheckpoint(`${BIN_REPO}@main`, out, { progress: false });
    assert.equal(summary.input, 'hf');
    assert.ok(await fs.stat(path.join(repoCacheFolder(BIN_REPO, cacheDir), 'snapshots', BIN_COMMIT, 'pytorch_model.bin')));
    await assertLoadsLikeTransformers(out);
    await assert.rejects(convertCheckpoint('test-org/no-such-repo', path.join(cacheDir, 'none'), { progress: false }), FileNotFoundError);
  } finally {
    for (const [key, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  }
});
