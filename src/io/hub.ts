/**
 * Hugging Face hub downloads into the cache layout of Python's huggingface_hub (`file_download.py`,
 * `constants.py`), so files that Python users already downloaded are reused and the other way round:
 *
 *   <cache>/models--<org>--<name>/blobs/<etag>                  file content, named by its ETag
 *   <cache>/models--<org>--<name>/refs/<revision>               the commit a branch or tag resolved to
 *   <cache>/models--<org>--<name>/snapshots/<commit>/<file>     relative symlink to the blob
 *   <cache>/models--<org>--<name>/.no_exist/<commit>/<file>     empty marker: the repo has no such file
 *
 * `@huggingface/hub`'s `downloadFileToCacheDir` is not used: it names snapshot folders after the last commit that
 * touched each file rather than the revision's commit (so one revision ends up split over several folders
 * Python never reads), writes no `refs/` entry, has no offline mode and reads neither `HF_ENDPOINT` nor
 * `HF_HUB_OFFLINE`. This module speaks the hub's plain file protocol instead: `HEAD /<repo>/resolve/<rev>/<file>`
 * for the commit (`X-Repo-Commit`), ETag (`X-Linked-Etag` for LFS files) and size, then a GET of the file.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FileFormatError, FileNotFoundError, InvalidArgumentError, NetworkError } from '../errors.js';
import { temporaryPathFor, writeFileAtomic } from './atomic.js';
import { createProgress } from './progress.js';
import { exists } from './fs_checks.js';

export interface HubOptions {
  /** Branch, tag or commit hash (default `main`). */
  revision?: string;
  /** Cache root (default: `HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`). */
  cacheDir?: string;
  /** Hub URL (default: `HF_ENDPOINT`, else https://huggingface.co). */
  endpoint?: string;
  /** Never touch the network, only the cache (default: `HF_HUB_OFFLINE`). */
  offline?: boolean;
  /** Bearer token for private or gated repositories (default: `HF_TOKEN`). */
  token?: string;
  /** Draw a download progress bar (default: when stderr is a terminal). */
  progress?: boolean;
}

const DEFAULT_ENDPOINT = 'https://huggingface.co';
const COMMIT_HASH = /^[0-9a-f]{40}$/;
const SAFE_ETAG = /^[0-9A-Za-z._-]{1,200}$/;
const REPO_ID = /^[A-Za-z0-9][A-Za-z0-9._-]*(\/[A-Za-z0-9][A-Za-z0-9._-]*)?$/;
const MAX_REDIRECTS = 10;

function isTrue(value: string | undefined): boolean {
  return ['1', 'ON', 'YES', 'TRUE'].includes((value ?? '').toUpperCase());
}

/** The hub cache folder, resolved from the environment exactly as huggingface_hub does. */
export function hubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const explicit = env.HF_HUB_CACHE || env.HUGGINGFACE_HUB_CACHE;
  if (explicit) return expandHome(explicit);
  const home = env.HF_HOME || path.join(env.XDG_CACHE_HOME || path.join('~', '.cache'), 'huggingface');
  return path.join(expandHome(home), 'hub');
}

export function hubEndpoint(env: NodeJS.ProcessEnv = process.env): string {
  return (env.HF_ENDPOINT || DEFAULT_ENDPOINT).replace(/\/+$/, '');
}

export function hubOffline(env: NodeJS.ProcessEnv = process.env): boolean {
  return isTrue(env.HF_HUB_OFFLINE);
}

function expandHome(p: string): string {
  return p === '~' || p.startsWith(`~${path.sep}`) || p.startsWith('~/') ? path.join(os.homedir(), p.slice(1)) : p;
}

/** `org/name` (or a bare legacy `name`): the shape of a hub model id. */
export function isHubRepoId(source: string): boolean {
  return REPO_ID.test(source) && !source.split('/').some((part) => part === '.' || part === '..' || part.endsWith('.git'));
}

/** `<cache>/models--org--name`. */
export function repoCacheFolder(repoId: string, cacheDir: string = hubCacheDir()): string {
  return path.join(cacheDir, `models--${repoId.split('/').join('--')}`);
}

function checkRelative(what: string, value: string): void {
  const parts = value.split('/');
  if (value === '' || value.startsWith('/') || value.includes('\\') || parts.some((p) => p === '' || p === '.' || p === '..')) {
    throw new InvalidArgumentError(`${what}: expected a relative path without '.' or '..' segments, got ${JSON.stringify(value)}`);
  }
}

interface Resolved {
  repoId: string;
  revision: string;
  storage: string;
  endpoint: string;
  offline: boolean;
  token: string | undefined;
  progress: boolean | undefined;
}

function resolveOptions(repoId: string, options: HubOptions): Resolved {
  if (!isHubRepoId(repoId)) throw new InvalidArgumentError(`repo id: expected 'org/name', got ${JSON.stringify(repoId)}`);
  const revision = options.revision ?? 'main';
  checkRelative('revision', revision);
  return {
    repoId,
    revision,
    storage: repoCacheFolder(repoId, options.cacheDir ?? hubCacheDir()),
    endpoint: (options.endpoint ?? hubEndpoint()).replace(/\/+$/, ''),
    offline: options.offline ?? hubOffline(),
    token: options.token ?? (process.env.HF_TOKEN || undefined),
    progress: options.progress,
  };
}

/** What the cache alone says about a file: its path, `absent` (a `.no_exist` marker), or nothing. */
async function fromCache(r: Resolved, filename: string): Promise<string | 'absent' | undefined> {
  let commit = COMMIT_HASH.test(r.revision) ? r.revision : undefined;
  if (commit === undefined) {
    const ref = await fs.readFile(path.join(r.storage, 'refs', r.revision), 'utf8').catch(() => undefined);
    commit = ref?.trim();
  }
  if (commit === undefined || !COMMIT_HASH.test(commit)) return undefined;
  const pointer = path.join(r.storage, 'snapshots', commit, filename);
  if (await exists(pointer)) return pointer;
  if (await exists(path.join(r.storage, '.no_exist', commit, filename))) return 'absent';
  return undefined;
}

/**
 * The local path of `filename` from hub repo `repoId`, downloading it into the cache when needed; `undefined`
 * when the repository exists but has no such file. Offline (or when the hub cannot be reached) the cache answers.
 */
export async function hubFile(repoId: string, filename: string, options: HubOptions = {}): Promise<string | undefined> {
  checkRelative('filename', filename);
  const r = resolveOptions(repoId, options);
  const where = `${repoId}/${filename} (revision ${r.revision})`;
  if (r.offline) {
    const cached = await fromCache(r, filename);
    if (cached === undefined) {
      throw new FileNotFoundError(`${where} in the hub cache ${path.dirname(r.storage)}`, 'file (offline mode: HF_HUB_OFFLINE is set, so nothing is downloaded)');
    }
    return cached === 'absent' ? undefined : cached;
  }
  const url = `${r.endpoint}/${repoId}/resolve/${encodeURIComponent(r.revision)}/${filename.split('/').map(encodeURIComponent).join('/')}`;
  let head: Response;
  try {
    head = await headFollowingRelative(url, authHeaders(r));
  } catch (err) {
    const cached = await fromCache(r, filename);
    if (cached !== undefined) return cached === 'absent' ? undefined : cached;
    throw new NetworkError(`cannot reach ${r.endpoint} for ${where} and the file is not cached: ${(err as Error).message}`, { cause: err });
  }
  const commit = head.headers.get('x-repo-commit') ?? undefined;
  if (head.status === 404 || head.status === 401) {
    const code = head.headers.get('x-error-code');
    if (code === 'EntryNotFound' && commit !== undefined && COMMIT_HASH.test(commit)) {
      const marker = path.join(r.storage, '.no_exist', commit, filename);
      await fs.mkdir(path.dirname(marker), { recursive: true });
      await writeFileAtomic(marker, '');
      await writeRef(r, commit);
      return undefined;
    }
    if (code === 'EntryNotFound') return undefined;
    if (code === 'RevisionNotFound') throw new FileNotFoundError(`${r.endpoint}/${repoId}@${r.revision}`, 'hub revision');
    throw new FileNotFoundError(`${r.endpoint}/${repoId}`, 'hub repository (or it is private or gated and needs a token)');
  }
  if (head.status >= 400) throw new NetworkError(`${url}: HTTP ${head.status} ${head.statusText}`);
  const etag = normalizeEtag(head.headers.get('x-linked-etag') ?? head.headers.get('etag'));
  if (commit === undefined || !COMMIT_HASH.test(commit) || etag === undefined) {
    throw new NetworkError(`${url}: the server sent no usable X-Repo-Commit / ETag headers (is ${r.endpoint} a Hugging Face hub?)`);
  }
  const sizeHeader = head.headers.get('x-linked-size') ?? head.headers.get('content-length');
  const size = sizeHeader === null ? undefined : Number(sizeHeader);
  const location = head.status >= 300 && head.status < 400 ? head.headers.get('location') : null;
  await writeRef(r, commit);
  const pointer = path.join(r.storage, 'snapshots', commit, filename);
  if (await exists(pointer)) return pointer;
  const blob = path.join(r.storage, 'blobs', etag);
  if (!(await exists(blob))) {
    const target = location === null ? url : new URL(location, url).toString();
    await download(target, blob, { etag, size, label: filename, progress: r.progress, headers: sameOrigin(target, r.endpoint) ? authHeaders(r) : {} });
  }
  await linkBlob(blob, pointer);
  return pointer;
}

function authHeaders(r: Resolved): Record<string, string> {
  return r.token === undefined ? {} : { authorization: `Bearer ${r.token}` };
}

function sameOrigin(a: string, b: string): boolean {
  return new URL(a).origin === new URL(b).origin;
}

/** HEAD without following redirects to other hosts: the first hub answer carries the metadata (as in Python). */
async function headFollowingRelative(url: string, headers: Record<string, string>): Promise<Response> {
  let current = url;
  for (let i = 0; i <= MAX_REDIRECTS; i++) {
    const response = await fetch(current, { method: 'HEAD', redirect: 'manual', headers: { ...headers, 'accept-encoding': 'identity' } });
    const location = response.headers.get('location');
    if (response.status >= 300 && response.status < 400 && location !== null && location.startsWith('/')) {
      current = new URL(location, current).toString();
      continue;
    }
    return response;
  }
  throw new Error(`more than ${MAX_REDIRECTS} redirects`);
}

function normalizeEtag(value: string | null): string | undefined {
  if (value === null) return undefined;
  const etag = value.replace(/^W\//, '').replace(/^"|"$/g, '');
  return SAFE_ETAG.test(etag) ? etag : undefined;
}

async function writeRef(r: Resolved, commit: string): Promise<void> {
  if (r.revision === commit) return;
  const ref = path.join(r.storage, 'refs', r.revision);
  const current = await fs.readFile(ref, 'utf8').catch(() => undefined);
  if (current === commit) return;
  await fs.mkdir(path.dirname(ref), { recursive: true });
  await writeFileAtomic(ref, commit);
}

interface DownloadOptions {
  etag: string;
  size: number | undefined;
  label: string;
  progress: boolean | undefined;
  headers: Record<string, string>;
}

/**
 * Streams `url` into `blob` through a temporary file; the size must match the advertised one and, for LFS files
 * (whose ETag is the SHA-256 of the content), so must the hash. A failed download leaves nothing behind.
 */
async function download(url: string, blob: string, options: DownloadOptions): Promise<void> {
  await fs.mkdir(path.dirname(blob), { recursive: true });
  let response: Response;
  try {
    response = await fetch(url, { headers: { ...options.headers, 'accept-encoding': 'identity' } });
  } catch (err) {
    throw new NetworkError(`cannot download ${url}: ${(err as Error).message}`, { cause: err });
  }
  if (!response.ok || response.body === null) throw new NetworkError(`cannot download ${url}: HTTP ${response.status} ${response.statusText}`);
  const hash = /^[0-9a-f]{64}$/.test(options.etag) ? createHash('sha256') : undefined;
  const tmp = temporaryPathFor(blob);
  const bar = createProgress(options.label, options.size, options.progress === undefined ? {} : { enabled: options.progress });
  const handle = await fs.open(tmp, 'wx');
  let received = 0;
  try {
    const reader = response.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      received += value.byteLength;
      if (options.size !== undefined && received > options.size) {
        throw new FileFormatError(url, `download is larger than the advertised ${options.size} bytes`);
      }
      hash?.update(value);
      await handle.write(value);
      bar.tick(value.byteLength);
    }
    if (options.size !== undefined && received !== options.size) {
      throw new NetworkError(`download of ${url} ended after ${received} of ${options.size} bytes`);
    }
    const digest = hash?.digest('hex');
    if (digest !== undefined && digest !== options.etag) {
      throw new FileFormatError(url, `downloaded content has SHA-256 ${digest}, the hub announced ${options.etag}`);
    }
    await handle.sync();
    await handle.close();
    await fs.rename(tmp, blob);
  } catch (err) {
    await handle.close().catch(() => undefined);
    await fs.rm(tmp, { force: true });
    if (err instanceof TypeError) throw new NetworkError(`download of ${url} failed: ${err.message}`, { cause: err });
    throw err;
  } finally {
    bar.done();
  }
}

/** snapshots/<commit>/<file> -> ../../blobs/<etag> as a relative symlink; a copy where symlinks are refused. */
async function linkBlob(blob: string, pointer: string): Promise<void> {
  await fs.mkdir(path.dirname(pointer), { recursive: true });
  const tmp = temporaryPathFor(pointer);
  try {
    await fs.symlink(path.relative(path.dirname(pointer), blob), tmp);
  } catch {
    await fs.copyFile(blob, tmp);
  }
  await fs.rename(tmp, pointer);
}
