/** Output-folder checks shared by the commands that write files, run before any slow work. */
import { constants as fsConstants, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { InvalidArgumentError } from '../errors.js';

/**
 * Proves that the folder `dir` can be created and written, without creating it: the nearest existing ancestor must
 * be a writable folder. `option` names the argument in the error. Callers make the folder once the work is done.
 */
export async function checkWritableFolder(dir: string, option: string): Promise<void> {
  let existing = path.resolve(dir);
  for (;;) {
    // ENOTDIR means an ancestor is a file; keep climbing to name it.
    const stat = await fs.stat(existing).catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' || err.code === 'ENOTDIR' ? undefined : err));
    if (stat instanceof Error) throw new InvalidArgumentError(`${option}: cannot write to the folder ${dir} (${stat.message})`);
    if (stat !== undefined) {
      if (!stat.isDirectory()) throw new InvalidArgumentError(`${option}: cannot write to the folder ${dir} (${existing} is a file)`);
      break;
    }
    const parent = path.dirname(existing);
    if (parent === existing) break;
    existing = parent;
  }
  try {
    await fs.access(existing, fsConstants.W_OK);
  } catch {
    throw new InvalidArgumentError(`${option}: cannot write to the folder ${dir} (permission denied on ${existing})`);
  }
}
