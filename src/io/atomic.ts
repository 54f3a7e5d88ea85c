/**
 * Atomic file writes: data goes to a temporary file beside the target, is flushed to disk, and only then renamed
 * over the target, so a reader (or a process restarted after a crash) sees either the old file or the new one,
 * never a half-written file.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';

export function temporaryPathFor(target: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
}

/** Writes `chunks` to `target` atomically. On failure the temporary file is removed and the previous target survives. */
export async function writeFileAtomic(target: string, chunks: Uint8Array | string | readonly (Uint8Array | string)[]): Promise<void> {
  const list = Array.isArray(chunks) ? chunks : [chunks as Uint8Array | string];
  const tmp = temporaryPathFor(target);
  let handle: fs.FileHandle | undefined;
  try {
    handle = await fs.open(tmp, 'wx');
    for (const chunk of list) {
      const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
      // A write may store fewer bytes than asked (full disk, file-size limit); the next one then reports the error.
      for (let done = 0; done < bytes.byteLength; ) done += (await handle.write(bytes, done)).bytesWritten;
    }
    await handle.sync();
    await handle.close();
    handle = undefined;
    await fs.rename(tmp, target);
  } catch (err) {
    await handle?.close().catch(() => undefined);
    await fs.rm(tmp, { force: true }).catch(() => undefined);
    throw err;
  }
  await syncDirectory(path.dirname(target));
}

/** Makes a rename durable: the directory entry itself must reach the disk. */
async function syncDirectory(dir: string): Promise<void> {
  let handle: fs.FileHandle | undefined;
  try {
    handle = await fs.open(dir, 'r');
    await handle.sync();
  } catch {
    // Some file systems refuse fsync on directories; the rename itself is still atomic there.
  } finally {
    await handle?.close().catch(() => undefined);
  }
}
