/**
 * Reader for PhraseCut (`VGPhraseCut_v0`, https://github.com/ChenyunWu/PhraseCutDataset) and for any dataset written
 * in the same layout: `image_data_split.json`, `refer_{split}.json`, `images/{image_id}.jpg`.
 *
 * `refer_train.json` is 344 MB, so it is never held in memory: the reader streams it once and keeps a compact index
 * (task id, image id, phrase and the record's byte range); polygons are re-read from the file on demand.
 * Defective input (malformed records, polygons with fewer than 3 points, missing or undecodable images, images whose
 * size disagrees with the annotation, the 17 known-bad ids) is skipped and counted; only a dataset that cannot
 * be read at all (no directory, no refer file) raises a `DatasetError`.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { entryIn, listIn } from '../collections.js';
import { ClipSegError, DatasetError } from '../errors.js';
import { loadImage } from '../io/image_io.js';
import { LruCache } from '../pipeline/lru.js';
import { type RawImage, toRGB } from '../processor/image.js';
import { readJsonRange, streamJsonArray } from './json_stream.js';
import { type RasterRule, rasterizePolygons } from './rasterize.js';

/** Image ids whose annotated size does not match the real image (skipped by CLIPSeg's loader). */
export const BAD_IMAGE_IDS: ReadonlySet<number> = new Set([
  150417, 285665, 498246, 61564, 285743, 498269, 498010, 150516, 150344, 286093, 61530, 150333, 286065, 285814, 498187,
  285761, 498042,
]);

export const PHRASECUT_SPLITS = ['train', 'val', 'test', 'miniv'] as const;

export type SkipReason =
  | 'bad_image_id'
  | 'unknown_image'
  | 'missing_image_file'
  | 'malformed_record'
  | 'duplicate_task_id'
  | 'polygon_too_few_points'
  | 'no_valid_polygons'
  | 'image_decode_failed'
  | 'image_size_mismatch'
  | 'record_unreadable';

export interface DatasetWarning {
  reason: SkipReason;
  message: string;
  file?: string;
  taskId?: string;
  imageId?: number;
}

export interface DatasetSummary {
  split: string;
  tasks: number;
  images: number;
  skipped: Partial<Record<SkipReason, number>>;
}

export interface ImageInfo {
  imageId: number;
  width: number;
  height: number;
  split: string;
}

/** The compact per-task index entry; the heavy fields stay in the file. */
export interface TaskEntry {
  taskId: string;
  imageId: number;
  phrase: string;
  /** `phrase_structure.name` and `.attributes`, when the record has them (hard negatives draw on them). */
  name?: string;
  attributes?: readonly string[];
  file: number;
  offset: number;
  length: number;
}

export interface PhraseStructure {
  name?: string;
  attributes?: string[];
  relation_descriptions?: unknown[];
  type?: string;
  [key: string]: unknown;
}

/** A structure's `name` and `attributes`, each only when well-formed (a string; a list of strings). */
export function nameAndAttributes(structure: PhraseStructure | undefined): { name?: string; attributes?: string[] } {
  const { name, attributes } = structure ?? {};
  return {
    ...(typeof name === 'string' ? { name } : {}),
    ...(Array.isArray(attributes) && attributes.every((a) => typeof a === 'string') ? { attributes } : {}),
  };
}

export interface PhraseCutTask {
  taskId: string;
  imageId: number;
  phrase: string;
  annIds: number[];
  instanceBoxes: number[][];
  /** polygons[instance][polygon] as flat [x0, y0, x1, y1, ...]; polygons with fewer than 3 points removed. */
  polygons: Float64Array[][];
  phraseStructure?: PhraseStructure;
}

export interface LoadedSample {
  task: PhraseCutTask;
  /** RGB, at the annotated size. */
  image: RawImage;
  /** Union of every polygon of every instance, 0/1, row-major height x width. */
  mask: Uint8Array;
}

export interface OpenOptions {
  /** 'train' | 'val' | 'test' | 'miniv', or several joined by '_' (e.g. 'val_miniv'). Default 'train'. */
  split?: string;
  /** Called once per skipped record, polygon or image. */
  onWarning?: (warning: DatasetWarning) => void;
  /** Image ids to skip; default `BAD_IMAGE_IDS`. */
  skipImageIds?: Iterable<number>;
  /** Decoded images kept in memory (default 16). */
  imageCacheSize?: number;
}

interface ParsedRecord {
  task?: PhraseCutTask;
  defect?: string;
  droppedPolygons: number;
}

function isFiniteNumber(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

/** Validates one raw `refer_*.json` record; never throws. */
export function parseTaskRecord(value: unknown): ParsedRecord {
  const bad = (defect: string): ParsedRecord => ({ defect, droppedPolygons: 0 });
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return bad('the record is not an object');
  const r = value as Record<string, unknown>;
  if (typeof r.task_id !== 'string' || r.task_id.length === 0) return bad('task_id is not a non-empty string');
  if (!Number.isSafeInteger(r.image_id)) return bad('image_id is not an integer');
  if (typeof r.phrase !== 'string') return bad('phrase is not a string');
  if (!Array.isArray(r.Polygons)) return bad('Polygons is not a list');
  let dropped = 0;
  const polygons: Float64Array[][] = [];
  for (const [i, instance] of r.Polygons.entries()) {
    if (!Array.isArray(instance)) return bad(`Polygons[${i}] is not a list of polygons`);
    const kept: Float64Array[] = [];
    for (const [j, polygon] of instance.entries()) {
      if (!Array.isArray(polygon)) return bad(`Polygons[${i}][${j}] is not a list of points`);
      const flat = new Float64Array(polygon.length * 2);
      for (const [k, point] of polygon.entries()) {
        if (!Array.isArray(point) || point.length !== 2 || !isFiniteNumber(point[0]) || !isFiniteNumber(point[1])) {
          return bad(`Polygons[${i}][${j}][${k}] is not an [x, y] pair of finite numbers`);
        }
        flat[2 * k] = point[0];
        flat[2 * k + 1] = point[1];
      }
      if (polygon.length < 3) dropped++;
      else kept.push(flat);
    }
    polygons.push(kept);
  }
  const annIds = Array.isArray(r.ann_ids) ? r.ann_ids.filter((a): a is number => Number.isSafeInteger(a)) : [];
  const boxes = Array.isArray(r.instance_boxes)
    ? r.instance_boxes.filter((b): b is number[] => Array.isArray(b) && b.length === 4 && b.every(isFiniteNumber))
    : [];
  const structure = typeof r.phrase_structure === 'object' && r.phrase_structure !== null ? (r.phrase_structure as PhraseStructure) : undefined;
  return {
    task: {
      taskId: r.task_id,
      imageId: r.image_id as number,
      phrase: r.phrase,
      annIds,
      instanceBoxes: boxes,
      polygons,
      ...(structure === undefined ? {} : { phraseStructure: structure }),
    },
    droppedPolygons: dropped,
  };
}

/** Accepts either the `VGPhraseCut_v0` folder itself or a folder that contains it. */
async function resolveRoot(dir: string): Promise<string> {
  const stat = await fs.stat(dir).catch(() => undefined);
  if (stat === undefined || !stat.isDirectory()) throw new DatasetError(`PhraseCut directory not found: ${dir}`);
  const nested = path.join(dir, 'VGPhraseCut_v0');
  const inner = await fs.stat(path.join(nested, 'image_data_split.json')).catch(() => undefined);
  return inner?.isFile() === true ? nested : dir;
}

export class PhraseCutDataset {
  readonly dir: string;
  readonly split: string;
  readonly tasks: readonly TaskEntry[];
  readonly images: ReadonlyMap<number, ImageInfo>;
  private readonly files: readonly string[];
  private readonly handles = new Map<number, Promise<fs.FileHandle>>();
  private readonly skipped = new Map<SkipReason, number>();
  private readonly onWarning: ((w: DatasetWarning) => void) | undefined;
  private readonly imageCache: LruCache<number, RawImage>;
  private readonly failedImages = new Set<number>();
  private groups: Map<string, number[]> | undefined;

  private constructor(
    dir: string,
    split: string,
    files: string[],
    tasks: TaskEntry[],
    images: Map<number, ImageInfo>,
    skipped: Map<SkipReason, number>,
    options: OpenOptions,
  ) {
    this.dir = dir;
    this.split = split;
    this.files = files;
    this.tasks = tasks;
    this.images = images;
    this.skipped = skipped;
    this.onWarning = options.onWarning;
    this.imageCache = new LruCache(options.imageCacheSize ?? 16);
  }

  /** Indexes the split(s); streams each refer file once. */
  static async open(dir: string, options: OpenOptions = {}): Promise<PhraseCutDataset> {
    const root = await resolveRoot(dir);
    const split = options.split ?? 'train';
    const parts = split.split('_');
    if (parts.some((p) => p.length === 0)) throw new DatasetError(`split: expected names joined by '_', got '${split}'`);
    const skipIds = new Set(options.skipImageIds ?? BAD_IMAGE_IDS);
    const skipped = new Map<SkipReason, number>();
    const warn = (w: DatasetWarning): void => {
      skipped.set(w.reason, (skipped.get(w.reason) ?? 0) + 1);
      options.onWarning?.(w);
    };
    const images = await readImageSplit(path.join(root, 'image_data_split.json'), warn);
    const imagesDir = path.join(root, 'images');
    let imageFiles: Set<string>;
    try {
      imageFiles = new Set(await fs.readdir(imagesDir));
    } catch {
      throw new DatasetError(`PhraseCut image directory not found: ${imagesDir}`);
    }
    const files: string[] = [];
    const tasks: TaskEntry[] = [];
    // PhraseCut's 310k training tasks repeat few names and attribute lists. Sharing one copy of each, the list of
    // 310k entries grew by 12 MB in a heap measurement, against 29 MB with a copy per task.
    const shared = new Map<string, string | readonly string[]>();
    const share = <T extends string | readonly string[]>(key: string, value: T): T => entryIn(shared, key, () => value) as T;
    const seen = new Set<string>();
    for (const part of parts) {
      const file = path.join(root, `refer_${part}.json`);
      if ((await fs.stat(file).catch(() => undefined))?.isFile() !== true) {
        throw new DatasetError(`PhraseCut annotation file not found for split '${part}': ${file}`);
      }
      const fileIndex = files.push(file) - 1;
      try {
        for await (const element of streamJsonArray(file)) {
          const where = `${file} record ${element.index} (byte ${element.offset})`;
          if (element.error !== undefined) {
            warn({ reason: 'malformed_record', message: `${where}: not valid JSON: ${element.error}`, file });
            continue;
          }
          const parsed = parseTaskRecord(element.value);
          const task = parsed.task;
          if (task === undefined) {
            warn({ reason: 'malformed_record', message: `${where}: ${parsed.defect}`, file });
            continue;
          }
          const ids = { file, taskId: task.taskId, imageId: task.imageId };
          if (seen.has(task.taskId)) {
            warn({ reason: 'duplicate_task_id', message: `${where}: task_id ${task.taskId} appears again`, ...ids });
            continue;
          }
          if (skipIds.has(task.imageId)) {
            warn({ reason: 'bad_image_id', message: `${where}: image ${task.imageId} is on the skip list`, ...ids });
            continue;
          }
          if (!images.has(task.imageId)) {
            warn({ reason: 'unknown_image', message: `${where}: image ${task.imageId} is not in image_data_split.json`, ...ids });
            continue;
          }
          if (!imageFiles.has(`${task.imageId}.jpg`)) {
            warn({ reason: 'missing_image_file', message: `${where}: ${path.join(imagesDir, `${task.imageId}.jpg`)} does not exist`, ...ids });
            continue;
          }
          for (let k = 0; k < parsed.droppedPolygons; k++) {
            warn({ reason: 'polygon_too_few_points', message: `${where}: a polygon with fewer than 3 points was dropped`, ...ids });
          }
          if (!task.polygons.some((inst) => inst.length > 0)) {
            warn({ reason: 'no_valid_polygons', message: `${where}: no polygon with 3 or more points`, ...ids });
            continue;
          }
          seen.add(task.taskId);
          const { name, attributes } = nameAndAttributes(task.phraseStructure);
          tasks.push({
            taskId: task.taskId,
            imageId: task.imageId,
            phrase: task.phrase,
            ...(name === undefined ? {} : { name: share(`n${name}`, name) }),
            ...(attributes === undefined ? {} : { attributes: share(`a${JSON.stringify(attributes)}`, attributes) }),
            file: fileIndex,
            offset: element.offset,
            length: element.length,
          });
        }
      } catch (err) {
        if (err instanceof ClipSegError && !(err instanceof DatasetError)) {
          throw new DatasetError(`cannot read PhraseCut annotations: ${err.message}`, { cause: err });
        }
        throw err;
      }
    }
    // CLIPSeg lists samples image by image (sorted ids), each image's phrases in file order.
    tasks.sort((a, b) => a.imageId - b.imageId);
    return new PhraseCutDataset(root, split, files, tasks, images, skipped, options);
  }

  get length(): number {
    return this.tasks.length;
  }

  summary(): DatasetSummary {
    return {
      split: this.split,
      tasks: this.tasks.length,
      images: new Set(this.tasks.map((t) => t.imageId)).size,
      skipped: Object.fromEntries(this.skipped),
    };
  }

  /** The distinct phrases, sorted. */
  phrases(): string[] {
    return [...this.phraseGroups().keys()];
  }

  /** Task indices grouped by exact phrase (the pool CLIPSeg draws visual supports from). */
  phraseGroups(): ReadonlyMap<string, readonly number[]> {
    if (this.groups === undefined) {
      const groups = new Map<string, number[]>();
      this.tasks.forEach((t, i) => listIn(groups, t.phrase).push(i));
      this.groups = new Map([...groups.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)));
    }
    return this.groups;
  }

  private warn(w: DatasetWarning): void {
    this.skipped.set(w.reason, (this.skipped.get(w.reason) ?? 0) + 1);
    this.onWarning?.(w);
  }

  private handle(file: number): Promise<fs.FileHandle> {
    let h = this.handles.get(file);
    if (h === undefined) {
      h = fs.open(this.files[file] as string, 'r');
      this.handles.set(file, h);
    }
    return h;
  }

  /** The full record of task `index` (polygons included), or null when it can no longer be read. */
  async loadTask(index: number): Promise<PhraseCutTask | null> {
    const entry = this.entry(index);
    const file = this.files[entry.file] as string;
    let parsed: ParsedRecord | undefined;
    try {
      const read = await readJsonRange(await this.handle(entry.file), entry.offset, entry.length);
      parsed = read.error === undefined ? parseTaskRecord(read.value) : undefined;
    } catch {
      parsed = undefined;
    }
    const task = parsed?.task;
    if (task === undefined || task.taskId !== entry.taskId) {
      this.warn({ reason: 'record_unreadable', message: `${file}: task ${entry.taskId} changed or became unreadable since indexing`, file, taskId: entry.taskId });
      return null;
    }
    return task;
  }

  /** The RGB image `imageId` at its annotated size, or null (counted) when it cannot be decoded or has another size. */
  async loadImage(imageId: number): Promise<RawImage | null> {
    const cached = this.imageCache.get(imageId);
    if (cached !== undefined) return cached;
    if (this.failedImages.has(imageId)) return null;
    const info = this.images.get(imageId);
    const file = path.join(this.dir, 'images', `${imageId}.jpg`);
    let image: RawImage;
    try {
      image = toRGB(await loadImage(file));
    } catch (err) {
      this.failedImages.add(imageId);
      this.warn({ reason: 'image_decode_failed', message: `${file}: ${(err as Error).message}`, file, imageId });
      return null;
    }
    if (info !== undefined && (image.width !== info.width || image.height !== info.height)) {
      this.failedImages.add(imageId);
      this.warn({
        reason: 'image_size_mismatch',
        message: `${file}: decoded ${image.width}x${image.height}, annotated ${info.width}x${info.height}`,
        file,
        imageId,
      });
      return null;
    }
    this.imageCache.set(imageId, image);
    return image;
  }

  /** The task's ground-truth mask at the annotated size under `rule`. */
  taskMask(task: PhraseCutTask, rule: RasterRule = 'clipseg'): Uint8Array {
    const info = this.images.get(task.imageId);
    if (info === undefined) throw new DatasetError(`image ${task.imageId} of task ${task.taskId} is not in image_data_split.json`);
    return rasterizePolygons(task.polygons.flat(), info.height, info.width, rule);
  }

  /** Task, image and mask together; null (counted) when the record or the image cannot be used. */
  async loadSample(index: number, rule: RasterRule = 'clipseg'): Promise<LoadedSample | null> {
    const task = await this.loadTask(index);
    if (task === null) return null;
    const image = await this.loadImage(task.imageId);
    if (image === null) return null;
    return { task, image, mask: this.taskMask(task, rule) };
  }

  private entry(index: number): TaskEntry {
    const entry = this.tasks[index];
    if (!Number.isInteger(index) || entry === undefined) {
      throw new DatasetError(`task index: expected an integer in [0, ${this.tasks.length}), got ${index}`);
    }
    return entry;
  }

  async close(): Promise<void> {
    const handles = [...this.handles.values()];
    this.handles.clear();
    await Promise.all(handles.map(async (h) => (await h.catch(() => undefined))?.close()));
  }
}

async function readImageSplit(file: string, warn: (w: DatasetWarning) => void): Promise<Map<number, ImageInfo>> {
  if ((await fs.stat(file).catch(() => undefined))?.isFile() !== true) {
    throw new DatasetError(`PhraseCut image list not found: ${file}`);
  }
  const images = new Map<number, ImageInfo>();
  try {
    for await (const element of streamJsonArray(file)) {
      const v = element.value as Record<string, unknown> | undefined;
      const ok =
        typeof v === 'object' &&
        v !== null &&
        Number.isSafeInteger(v.image_id) &&
        Number.isSafeInteger(v.width) &&
        Number.isSafeInteger(v.height) &&
        (v.width as number) > 0 &&
        (v.height as number) > 0;
      if (!ok) {
        warn({ reason: 'malformed_record', message: `${file} record ${element.index}: expected {image_id, width, height, split}`, file });
        continue;
      }
      const id = v.image_id as number;
      images.set(id, { imageId: id, width: v.width as number, height: v.height as number, split: typeof v.split === 'string' ? v.split : '' });
    }
  } catch (err) {
    if (err instanceof ClipSegError) throw new DatasetError(`cannot read the PhraseCut image list: ${err.message}`, { cause: err });
    throw err;
  }
  return images;
}
