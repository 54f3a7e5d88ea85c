import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { FileFormatError, FileNotFoundError, InvalidArgumentError, NetworkError } from '../src/errors.js';
import { hubCacheDir, hubEndpoint, hubFile, hubOffline, isHubRepoId, repoCacheFolder } from '../src/io/hub.js';

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
  private readonly commits = new Map<string, Map<string, ServedFile>>();
  private readonly refs = new Map<string, string>();
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

  publish(ref: string, commit: string, files: Record<string, ServedFile>): void {
    this.refs.set(ref, commit);
    this.commits.set(commit, new Map(Object.entries(files)));
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
    if (`${org}/${name}` !== REPO) return send(401, { 'x-error-code': 'RepositoryNotFound' });
    const rev = decodeURIComponent(revision);
    const commit = this.refs.get(rev) ?? (this.commits.has(rev) ? rev : undefined);
    if (commit === undefined) return send(404, { 'x-error-code': 'RevisionNotFound' });
    const served = this.commits.get(commit)!.get(decodeURIComponent(file));
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
hub.publish('main', MAIN, { 'config.json': { content: config, lfs: false }, 'model.safetensors': { content: weights, lfs: true }, 'sub/dir/notes.txt': { content: new TextEncoder().encode('hi'), lfs: false } });
hub.publish('dev', DEV, { 'config.json': { content: devConfig, lfs: false } });

async function tempCache(): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), 'clipseg-hub-'));
}

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
