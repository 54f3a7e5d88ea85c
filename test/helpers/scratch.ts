/** Temporary folders for a test file, removed when its tests have run. */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after } from 'node:test';

/**
 * Returns a maker of fresh, empty folders under the system's temporary folder, named `<prefix>XXXXXX`. All of them
 * are removed after the calling file's tests, whether they passed or failed, so repeated runs leave nothing behind.
 */
export function scratchFolders(prefix: string): () => Promise<string> {
  const made: string[] = [];
  after(() => Promise.all(made.map((dir) => fs.rm(dir, { recursive: true, force: true }))));
  return async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
    made.push(dir);
    return dir;
  };
}
