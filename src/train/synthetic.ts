/**
 * A generator of PhraseCut-format data (training recipe §3.3-3.5): pictures of coloured shapes on plain, noisy,
 * striped, checked or graded backgrounds, with referring phrases such as "red circle", "small blue square" or
 * "green triangle left of yellow star", written as `image_data_split.json`, `refer_{split}.json`,
 * `refer_input_{split}.json`, `name_att_rel_count.json` and `images/{id}.jpg`.
 *
 * Shapes are drawn by rasterising the very polygons that are stored (pixel-centre rule), and never overlap, so the
 * ground truth is exact. A phrase refers to every object it describes, so it always identifies its target and
 * a repeated colour-shape pair yields a multi-instance task. Output is a pure function of the seed.
 */
import { Jimp } from 'jimp';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { listIn } from '../collections.js';
import { InvalidArgumentError } from '../errors.js';
import { writeFileAtomic } from '../io/atomic.js';
import { rasterizePolygons } from './rasterize.js';
import { Rng } from './rng.js';

export interface MakeSyntheticOptions {
  /** Output folder (it plays the role of `VGPhraseCut_v0`). */
  out: string;
  seed: number;
  /** Number of images, at least 4 (one per split). */
  images: number;
  /** Longer image side in pixels (default 320). */
  size?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface SyntheticSummary {
  out: string;
  images: Record<string, number>;
  tasks: Record<string, number>;
}

const COLOURS: Readonly<Record<string, readonly [number, number, number]>> = {
  red: [220, 38, 38],
  green: [34, 160, 60],
  blue: [40, 80, 225],
  yellow: [240, 215, 40],
  orange: [245, 135, 25],
  purple: [140, 55, 190],
  white: [248, 248, 248],
  black: [22, 22, 22],
};
const COLOUR_NAMES = Object.keys(COLOURS);
const SHAPES = ['circle', 'square', 'triangle', 'star', 'hexagon', 'diamond', 'equals sign'] as const;
type Shape = (typeof SHAPES)[number];
const RELATIONS = ['left of', 'right of', 'above', 'below'] as const;
const ASPECTS = [1, 4 / 3, 3 / 4, 16 / 10, 10 / 16];

interface SceneObject {
  annId: number;
  shape: Shape;
  colour: string;
  size: 'small' | 'large';
  cx: number;
  cy: number;
  polygons: number[][];
}

interface TaskRecord {
  task_id: string;
  image_id: number;
  ann_ids: number[];
  instance_boxes: number[][];
  Polygons: number[][][][];
  phrase: string;
  phrase_structure: {
    name: string;
    attributes: string[];
    relation_ids: number[];
    relation_descriptions: Array<[string, string]>;
    type: string;
  };
}

const round2 = (v: number): number => Math.round(v * 100) / 100;

function regularPolygon(cx: number, cy: number, r: number, n: number, phase: number, inner?: number): number[] {
  const pts: number[] = [];
  const count = inner === undefined ? n : 2 * n;
  for (let k = 0; k < count; k++) {
    const radius = inner !== undefined && k % 2 === 1 ? inner : r;
    const a = phase + (2 * Math.PI * k) / count;
    pts.push(round2(cx + radius * Math.cos(a)), round2(cy + radius * Math.sin(a)));
  }
  return pts;
}

function rotatedRect(cx: number, cy: number, w: number, h: number, angle: number): number[] {
  const c = Math.cos(angle);
  const s = Math.sin(angle);
  const corners: Array<[number, number]> = [[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]];
  return corners.flatMap(([x, y]) => [round2(cx + x * c - y * s), round2(cy + x * s + y * c)]);
}

function shapePolygons(shape: Shape, cx: number, cy: number, r: number, rng: Rng): number[][] {
  const tilt = rng.uniform(-0.25, 0.25);
  switch (shape) {
    case 'circle':
      return [regularPolygon(cx, cy, r, 40, 0)];
    case 'square':
      return [rotatedRect(cx, cy, 1.6 * r, 1.6 * r, tilt)];
    case 'triangle':
      return [regularPolygon(cx, cy + 0.2 * r, 1.15 * r, 3, -Math.PI / 2 + tilt)];
    case 'star':
      return [regularPolygon(cx, cy, 1.1 * r, 5, -Math.PI / 2 + tilt, 0.45 * r)];
    case 'hexagon':
      return [regularPolygon(cx, cy, r, 6, tilt)];
    case 'diamond':
      return [regularPolygon(cx, cy, 1.1 * r, 4, -Math.PI / 2)];
    case 'equals sign':
      // One object drawn as two separate bars: an instance with two polygons.
      return [rotatedRect(cx, cy - 0.45 * r, 2 * r, 0.55 * r, tilt), rotatedRect(cx, cy + 0.45 * r, 2 * r, 0.55 * r, tilt)];
  }
}

function bounds(polygons: readonly number[][]): [number, number, number, number] {
  let x0 = Infinity;
  let y0 = Infinity;
  let x1 = -Infinity;
  let y1 = -Infinity;
  for (const p of polygons) {
    for (let k = 0; k < p.length; k += 2) {
      x0 = Math.min(x0, p[k]);
      x1 = Math.max(x1, p[k]);
      y0 = Math.min(y0, p[k + 1]);
      y1 = Math.max(y1, p[k + 1]);
    }
  }
  return [x0, y0, x1, y1];
}

function clampByte(v: number): number {
  return v < 0 ? 0 : v > 255 ? 255 : Math.round(v);
}

/** A muted background so that every shape colour stands out. */
function paintBackground(rgb: Uint8Array, width: number, height: number, rng: Rng): void {
  const tone = (): number[] => {
    const g = rng.uniform(85, 170);
    return [g + rng.uniform(-18, 18), g + rng.uniform(-18, 18), g + rng.uniform(-18, 18)];
  };
  const a = tone();
  const b = tone();
  const kind = rng.int(5);
  const period = rng.uniform(8, 40);
  const angle = rng.uniform(0, Math.PI);
  const noise = kind === 1 ? rng.uniform(10, 28) : 4;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const u = x * Math.cos(angle) + y * Math.sin(angle);
      let t = 0;
      if (kind === 2) t = Math.floor(u / period) % 2 === 0 ? 0 : 1;
      else if (kind === 3) t = (Math.floor(x / period) + Math.floor(y / period)) % 2;
      else if (kind === 4) t = u / (width + height);
      const i = 3 * (y * width + x);
      // Grey grain: one draw per pixel, shared by the channels.
      const grain = noise * rng.normal();
      for (let c = 0; c < 3; c++) rgb[i + c] = clampByte(a[c] + (b[c] - a[c]) * t + grain);
    }
  }
}

function placeObjects(width: number, height: number, count: number, rng: Rng, nextAnn: () => number, forced: Partial<SceneObject>[]): SceneObject[] {
  const objects: SceneObject[] = [];
  const boxes: Array<[number, number, number, number]> = [];
  const side = Math.min(width, height);
  for (let k = 0; k < count; k++) {
    const want = forced[k] ?? {};
    const size = want.size ?? (rng.bernoulli(0.5) ? 'small' : 'large');
    const shape = want.shape ?? rng.pick(SHAPES);
    const colour = want.colour ?? rng.pick(COLOUR_NAMES);
    const r = side * (size === 'small' ? rng.uniform(0.06, 0.085) : rng.uniform(0.15, 0.2));
    for (let attempt = 0; attempt < 200; attempt++) {
      const cx = rng.uniform(1.3 * r, width - 1.3 * r);
      const cy = rng.uniform(1.3 * r, height - 1.3 * r);
      const polygons = shapePolygons(shape, cx, cy, r, rng);
      const [x0, y0, x1, y1] = bounds(polygons);
      const gap = 3;
      if (boxes.some(([a0, b0, a1, b1]) => x0 - gap < a1 && a0 < x1 + gap && y0 - gap < b1 && b0 < y1 + gap)) continue;
      boxes.push([x0, y0, x1, y1]);
      objects.push({ annId: nextAnn(), shape, colour, size, cx, cy, polygons });
      break;
    }
  }
  return objects;
}

interface Description {
  phrase: string;
  name: string;
  attributes: string[];
  relations: Array<[string, string]>;
  targets: SceneObject[];
}

function holds(relation: (typeof RELATIONS)[number], a: SceneObject, b: SceneObject): boolean {
  const margin = 4;
  switch (relation) {
    case 'left of':
      return a.cx < b.cx - margin;
    case 'right of':
      return a.cx > b.cx + margin;
    case 'above':
      return a.cy < b.cy - margin;
    case 'below':
      return a.cy > b.cy + margin;
  }
}

/** Every phrase that refers to a non-empty set of objects; attributes go before the name, relations after. */
function describe(objects: readonly SceneObject[], grey: boolean): Description[] {
  const out: Description[] = [];
  const add = (attributes: string[], name: string, match: (o: SceneObject) => boolean, relations: Array<[string, string]> = []): void => {
    const targets = objects.filter(match);
    if (targets.length === 0) return;
    const rel = relations.map(([p, o]) => ` ${p} ${o}`).join('');
    out.push({ phrase: `${[...attributes, name].join(' ')}${rel}`, name, attributes, relations, targets });
  };
  for (const o of objects) {
    if (grey) {
      add([], o.shape, (x) => x.shape === o.shape);
      add([o.size], o.shape, (x) => x.shape === o.shape && x.size === o.size);
    } else {
      add([o.colour], o.shape, (x) => x.shape === o.shape && x.colour === o.colour);
      add([o.size, o.colour], o.shape, (x) => x.shape === o.shape && x.colour === o.colour && x.size === o.size);
    }
  }
  for (const anchor of objects) {
    const anchorMatch = (x: SceneObject): boolean => x.shape === anchor.shape && (grey || x.colour === anchor.colour);
    if (objects.filter(anchorMatch).length !== 1) continue;
    const anchorName = grey ? anchor.shape : `${anchor.colour} ${anchor.shape}`;
    for (const o of objects) {
      if (o === anchor) continue;
      for (const relation of RELATIONS) {
        if (!holds(relation, o, anchor)) continue;
        add(grey ? [] : [o.colour], o.shape, (x) => x !== anchor && x.shape === o.shape && (grey || x.colour === o.colour) && holds(relation, x, anchor), [
          [relation, anchorName],
        ]);
      }
    }
  }
  return out;
}

function makeTasks(imageId: number, objects: readonly SceneObject[], grey: boolean, rng: Rng, nextRelationId: () => number): TaskRecord[] {
  // One phrase per distinct target set keeps task ids (image id + ann ids) unique.
  const bySet = new Map<string, Description[]>();
  for (const d of describe(objects, grey)) {
    const key = d.targets.map((t) => t.annId).join('_');
    const list = listIn(bySet, key);
    if (!list.some((e) => e.phrase === d.phrase)) list.push(d);
  }
  const chosen = [...bySet.values()].map((list) => rng.pick(list));
  rng.shuffle(chosen);
  return chosen.slice(0, 6).map((d) => {
    const type = d.relations.length > 0 ? (d.attributes.length > 0 ? 'verbose' : 'relation') : d.attributes.length > 0 ? 'attribute' : 'name';
    return {
      task_id: `${imageId}__${d.targets.map((t) => t.annId).join('_')}`,
      image_id: imageId,
      ann_ids: d.targets.map((t) => t.annId),
      instance_boxes: d.targets.map((t) => {
        const [x0, y0, x1, y1] = bounds(t.polygons);
        return [round2(x0), round2(y0), round2(x1 - x0), round2(y1 - y0)];
      }),
      Polygons: d.targets.map((t) => t.polygons.map((p) => Array.from({ length: p.length / 2 }, (_, k) => [p[2 * k], p[2 * k + 1]]))),
      phrase: d.phrase,
      phrase_structure: {
        name: d.name,
        attributes: d.attributes,
        relation_ids: d.relations.map(() => nextRelationId()),
        relation_descriptions: d.relations,
        type,
      },
    };
  });
}

async function encodeJpeg(rgb: Uint8Array, width: number, height: number): Promise<Uint8Array> {
  const rgba = new Uint8Array(width * height * 4);
  for (let i = 0; i < width * height; i++) {
    rgba[4 * i] = rgb[3 * i];
    rgba[4 * i + 1] = rgb[3 * i + 1];
    rgba[4 * i + 2] = rgb[3 * i + 2];
    rgba[4 * i + 3] = 255;
  }
  const image = Jimp.fromBitmap({ data: rgba, width, height });
  const buffer = await image.getBuffer('image/jpeg', { quality: 95 });
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}

function splitOf(index: number, order: readonly number[], counts: Record<string, number>): string {
  const position = order.indexOf(index);
  let edge = counts.miniv as number;
  if (position < edge) return 'miniv';
  edge += counts.val as number;
  if (position < edge) return 'val';
  edge += counts.test as number;
  return position < edge ? 'test' : 'train';
}

function countsBy(records: readonly TaskRecord[]): Record<'cat' | 'att' | 'rel', Array<[string, number]>> {
  const tally = (values: string[]): Array<[string, number]> => {
    const m = new Map<string, number>();
    for (const v of values) m.set(v, (m.get(v) ?? 0) + 1);
    return [...m.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  };
  return {
    cat: tally(records.map((r) => r.phrase_structure.name)),
    att: tally(records.flatMap((r) => r.phrase_structure.attributes)),
    rel: tally(records.flatMap((r) => r.phrase_structure.relation_descriptions.map((d) => d[0]))),
  };
}

/** Writes a synthetic dataset into `options.out`; the same seed gives the same bytes. */
export async function makeSynthetic(options: MakeSyntheticOptions): Promise<SyntheticSummary> {
  const { out, seed, images } = options;
  const size = options.size ?? 320;
  if (typeof out !== 'string' || out.length === 0) throw new InvalidArgumentError(`out: expected a folder path, got ${String(out)}`);
  if (!Number.isSafeInteger(seed)) throw new InvalidArgumentError(`seed: expected an integer, got ${String(seed)}`);
  if (!Number.isSafeInteger(images) || images < 4) throw new InvalidArgumentError(`images: expected an integer >= 4 (one per split), got ${String(images)}`);
  if (!Number.isSafeInteger(size) || size < 64 || size > 2048) throw new InvalidArgumentError(`size: expected an integer in [64, 2048], got ${String(size)}`);
  await fs.mkdir(path.join(out, 'images'), { recursive: true });

  const held = Math.max(1, Math.round(images * 0.08));
  const counts: Record<string, number> = { miniv: Math.max(1, Math.round(images * 0.04)), val: held, test: held };
  counts.train = images - counts.miniv - counts.val - counts.test;
  if (counts.train < 1) Object.assign(counts, { miniv: 1, val: 1, test: 1, train: images - 3 });
  // Images 0-2 carry the checklist cases (two-polygon instance, multi-instance task, greyscale, non-square,
  // tiny objects) and always go to train; the rest are assigned by a seeded shuffle.
  const order = [0, 1, 2, ...Rng.derive(seed, 'split').shuffle(Array.from({ length: images - 3 }, (_, i) => i + 3))].reverse();

  let annCounter = 0;
  let relationCounter = 0;
  const nextAnn = (): number => ++annCounter;
  const nextRelationId = (): number => ++relationCounter;
  const imageInfo: Array<Record<string, unknown>> = [];
  const tasksBySplit: Record<string, TaskRecord[]> = { train: [], val: [], test: [], miniv: [] };
  for (let i = 0; i < images; i++) {
    const rng = Rng.derive(seed, 'image', i);
    const aspect = i === 0 ? 4 / 3 : i === 1 ? 3 / 4 : rng.pick(ASPECTS);
    const width = Math.round(aspect >= 1 ? size : size * aspect);
    const height = Math.round(aspect >= 1 ? size / aspect : size);
    const grey = i === 2 || (i > 2 && rng.bernoulli(1 / 12));
    const forced: Partial<SceneObject>[] =
      i === 0
        ? [{ shape: 'equals sign', colour: 'red', size: 'large' }, { shape: 'circle', colour: 'blue', size: 'small' }, { shape: 'circle', colour: 'blue', size: 'small' }]
        : i === 1
          ? [{ size: 'small' }, { size: 'small' }, { size: 'small' }]
          : [];
    if (i > 2 && rng.bernoulli(0.3)) {
      const twin = { shape: rng.pick(SHAPES), colour: rng.pick(COLOUR_NAMES) };
      forced.push(twin, twin);
    }
    const objects = placeObjects(width, height, Math.max(forced.length, 3 + rng.int(4)), rng, nextAnn, forced);
    const rgb = new Uint8Array(width * height * 3);
    paintBackground(rgb, width, height, rng);
    for (const o of objects) {
      const mask = rasterizePolygons(o.polygons, height, width, 'clipseg');
      const [r, g, b] = COLOURS[o.colour] as readonly [number, number, number];
      for (let p = 0; p < mask.length; p++) {
        if (mask[p] === 0) continue;
        const shade = rng.uniform(-6, 6);
        rgb[3 * p] = clampByte(r + shade);
        rgb[3 * p + 1] = clampByte(g + shade);
        rgb[3 * p + 2] = clampByte(b + shade);
      }
    }
    if (grey) {
      for (let p = 0; p < width * height; p++) {
        const y = clampByte(0.299 * rgb[3 * p] + 0.587 * rgb[3 * p + 1] + 0.114 * rgb[3 * p + 2]);
        rgb[3 * p] = y;
        rgb[3 * p + 1] = y;
        rgb[3 * p + 2] = y;
      }
    }
    const imageId = i + 1;
    const split = splitOf(i, order, counts);
    await writeFileAtomic(path.join(out, 'images', `${imageId}.jpg`), await encodeJpeg(rgb, width, height));
    imageInfo.push({ image_id: imageId, width, height, url: '', coco_id: null, flickr_id: null, split });
    (tasksBySplit[split] as TaskRecord[]).push(...makeTasks(imageId, objects, grey, rng, nextRelationId));
    options.onProgress?.(i + 1, images);
  }

  await writeFileAtomic(path.join(out, 'image_data_split.json'), JSON.stringify(imageInfo));
  for (const [split, records] of Object.entries(tasksBySplit)) {
    await writeFileAtomic(path.join(out, `refer_${split}.json`), JSON.stringify(records));
    const inputs = records.map((r) => ({
      task_id: r.task_id,
      image_id: r.image_id,
      phrase: r.phrase,
      phrase_structure: { name: r.phrase_structure.name, attributes: r.phrase_structure.attributes, relation_descriptions: r.phrase_structure.relation_descriptions },
    }));
    await writeFileAtomic(path.join(out, `refer_input_${split}.json`), JSON.stringify(inputs));
  }
  await writeFileAtomic(path.join(out, 'name_att_rel_count.json'), JSON.stringify(countsBy(Object.values(tasksBySplit).flat())));
  return {
    out,
    images: Object.fromEntries(Object.keys(tasksBySplit).map((s) => [s, imageInfo.filter((im) => im.split === s).length])),
    tasks: Object.fromEntries(Object.entries(tasksBySplit).map(([s, r]) => [s, r.length])),
  };
}
