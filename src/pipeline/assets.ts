/**
 * Paths of the files the package ships (`assets/`), found from this module's location so that they resolve the
 * same way from `src/` (run through tsx) and from `dist/src/` (the published build).
 */
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const PACKAGE_NAME = 'clipseg-tfjs';

let cachedRoot: string | undefined;

/** The folder holding the package's own package.json. */
export function packageRoot(): string {
  if (cachedRoot !== undefined) return cachedRoot;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = path.join(dir, 'package.json');
    if (existsSync(manifest)) {
      try {
        if ((JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === PACKAGE_NAME) {
          cachedRoot = dir;
          return dir;
        }
      } catch {
        // An unreadable manifest on the way up belongs to some other project; keep climbing.
      }
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`cannot locate the ${PACKAGE_NAME} package folder above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

/** The small model trained on synthetic shapes that ships with the package: the offline default. */
export const DEMO_MODEL_DIR: string = path.join(packageRoot(), 'assets', 'demo-model');

/** Example photos used by the README's commands. */
export const EXAMPLES_DIR: string = path.join(packageRoot(), 'assets', 'examples');
