"""Writes test/fixtures/phrasecut/: reference values for the PhraseCut reader, rasterisation, resizing and metrics.

Outputs:
  raster/cases.json, raster/masks.safetensors
      Polygons (float [x, y] lists) on small canvases and their masks under both rules:
      "clipseg":  skimage.draw.polygon2mask((H, W), points as (y, x)) per polygon, union by max
                  (CLIPSeg datasets/phrasecut.py);
      "official": PIL ImageDraw.polygon(int-truncated points, outline=1, fill=1) per polygon, ORed
                  (PhraseCutDataset utils/data_transfer.py polygons_to_mask).
  resize/resize.safetensors
      torch.nn.functional.interpolate references: bilinear with align_corners=True on float images and
      'nearest' source indices, as CLIPSeg's loader resizes crops to 352.
  metrics/inputs.safetensors, metrics/expected.json
      Probability maps and masks with the values CLIPSeg's FixedIntervalMetrics procedure gives (sorting and
      torch.where(p > t) with numpy float64 thresholds), and AP by Simpson's rule with old scipy's default
      even='avg', assembled from scipy's own simpson on odd-length runs plus trapezoids.
  VGPhraseCut_v0/  a small dataset in the real layout, including defective records, a greyscale JPEG,
      a corrupt JPEG, a missing image, a known-bad image id and an image whose size disagrees with its annotation.
  dataset_expected.json, dataset_masks.safetensors
      What a reader must index per split and the masks of every valid task under both rules.

Run: /work/.refvenv/bin/python tools/reference/gen_phrasecut.py
"""

import io
import json
import os
import shutil

import numpy as np
import PIL
import scipy
import skimage
import torch
from PIL import Image, ImageDraw
from safetensors.numpy import save_file
from scipy.integrate import simpson
from skimage.draw import polygon2mask
from torch.nn import functional as nnf

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "test", "fixtures", "phrasecut")
BAD_IMAGE_IDS = [150417, 285665, 498246, 61564, 285743, 498269, 498010, 150516, 150344, 286093, 61530,
                 150333, 286065, 285814, 498187, 285761, 498042]


def clipseg_mask(polygons, h, w):
    masks = [polygon2mask((h, w), np.array([p[::-1] for p in poly], dtype=np.float64)) for poly in polygons]
    if not masks:
        return np.zeros((h, w), dtype=np.uint8)
    return np.stack(masks).max(0).astype(np.uint8)


def official_mask(polygons, h, w):
    out = np.zeros((h, w))
    for poly in polygons:
        if len(poly) < 2:
            continue
        img = Image.new("L", (w, h), 0)
        ImageDraw.Draw(img).polygon([(int(x), int(y)) for x, y in poly], outline=1, fill=1)
        out += np.array(img)
    return (out > 0).astype(np.uint8)


def regular(cx, cy, r, n, phase=0.0, inner=None):
    pts = []
    for k in range(n * (2 if inner else 1)):
        radius = inner if inner and k % 2 else r
        a = phase + 2 * np.pi * k / (n * (2 if inner else 1))
        pts.append([round(cx + radius * np.cos(a), 3), round(cy + radius * np.sin(a), 3)])
    return pts


def raster_cases(rng):
    cases = [
        ("triangle", 24, 32, [[[3.2, 2.7], [28.9, 5.1], [12.4, 20.6]]]),
        ("integer square", 20, 20, [[[4, 4], [12, 4], [12, 12], [4, 12]]]),
        ("half-integer square", 20, 20, [[[4.5, 4.5], [12.5, 4.5], [12.5, 12.5], [4.5, 12.5]]]),
        ("concave star", 40, 40, [regular(20.3, 19.7, 17.5, 5, 0.3, inner=7.2)]),
        ("concave L", 30, 30, [[[2, 2], [20.5, 2], [20.5, 9.5], [9.5, 9.5], [9.5, 27], [2, 27]]]),
        ("concave C with collinear points", 32, 28, [[[3, 3], [14, 3], [24, 3], [24, 9], [9, 9], [9, 22],
                                                       [24, 22], [24, 28], [3, 28]]]),
        ("self-touching bow-tie", 30, 30, [[[2, 2], [26, 26], [26, 2], [2, 26]]]),
        ("self-touching at a vertex", 30, 36, [[[2, 2], [16, 14], [30, 2], [30, 26], [16, 14], [2, 26]]]),
        ("self-intersecting pentagram", 40, 40, [[[20, 2], [31, 36], [2, 14], [38, 14], [9, 36]]]),
        ("tiny sub-pixel triangle", 12, 12, [[[5.2, 5.1], [5.9, 5.3], [5.5, 5.8]]]),
        ("tiny triangle around a centre", 12, 12, [[[4.6, 4.7], [6.3, 4.9], [5.2, 6.4]]]),
        ("thin sliver", 20, 40, [[[1.5, 9.8], [38.5, 10.3], [38.4, 10.6], [1.4, 10.2]]]),
        ("partly off-image", 24, 24, [[[-6.5, -4.2], [17.3, -2.0], [30.1, 19.7], [5.5, 31.2]]]),
        ("entirely off-image", 16, 16, [[[20, 20], [30, 22], [25, 35]]]),
        ("negative coordinates", 16, 16, [[[-10, -10], [-2, -9], [-5, -1]]]),
        ("consecutive horizontal edges", 24, 30, [[[2, 3], [10, 3], [20, 3], [26, 12], [20, 20], [8, 20], [2, 12]]]),
        ("two-point polygon", 16, 16, [[[2.5, 3.5], [12.5, 11.5]]]),
        ("two polygons, one instance", 30, 40, [[[2, 2], [15, 2], [15, 12], [2, 12]],
                                                 [[20.5, 14.5], [37.5, 16.5], [30.5, 27.5]]]),
        ("overlapping polygons", 30, 30, [[[3, 3], [20, 3], [20, 20], [3, 20]], [[10.5, 10.5], [26.5, 12], [18, 27]]]),
        ("circle", 40, 48, [regular(23.6, 19.2, 14.3, 32, 0.1)]),
        ("edge along image border", 20, 20, [[[0, 0], [19, 0], [19, 19], [0, 19]]]),
        ("polygon beyond every border", 20, 20, [[[-5, -5], [25, -5], [25, 25], [-5, 25]]]),
    ]
    for k in range(18):
        h, w = int(rng.integers(12, 48)), int(rng.integers(12, 48))
        n = int(rng.integers(3, 13))
        cx, cy = rng.uniform(-4, w + 4), rng.uniform(-4, h + 4)
        angles = np.sort(rng.uniform(0, 2 * np.pi, n))
        radii = rng.uniform(1, max(h, w) * 0.7, n)
        pts = [[round(float(cx + r * np.cos(a)), 4), round(float(cy + r * np.sin(a)), 4)] for a, r in zip(angles, radii)]
        if k % 3 == 0:
            pts = [[float(np.floor(x)), float(np.floor(y))] for x, y in pts]
        if k % 4 == 1:
            rng.shuffle(pts)
        cases.append((f"random {k}", h, w, [pts]))
    return cases


def write_raster(rng):
    os.makedirs(os.path.join(OUT, "raster"), exist_ok=True)
    meta, tensors = [], {}
    for i, (name, h, w, polys) in enumerate(raster_cases(rng)):
        meta.append({"name": name, "height": h, "width": w, "polygons": polys})
        tensors[f"{i}.clipseg"] = clipseg_mask([p for p in polys if len(p) >= 3], h, w)
        tensors[f"{i}.official"] = official_mask(polys, h, w)
    with open(os.path.join(OUT, "raster", "cases.json"), "w") as f:
        json.dump({"cases": meta}, f)
    save_file(tensors, os.path.join(OUT, "raster", "masks.safetensors"))


def write_resize(rng):
    os.makedirs(os.path.join(OUT, "resize"), exist_ok=True)
    tensors = {}
    for i, (h, w, out) in enumerate([(29, 29, 52), (40, 40, 96), (97, 97, 64), (13, 13, 120)]):
        img = torch.from_numpy(rng.integers(0, 256, (3, h, w)).astype(np.float32))
        res = nnf.interpolate(img.unsqueeze(0), (out, out), mode="bilinear", align_corners=True)[0]
        tensors[f"bilinear.{i}.input"] = img.numpy()
        tensors[f"bilinear.{i}.output"] = res.numpy().astype(np.float32)
    for n_in in [37, 176, 300, 351, 352, 353, 500, 1000, 1999]:
        for n_out in [352, 64]:
            src = torch.arange(n_in, dtype=torch.float32).view(1, 1, 1, n_in)
            idx = nnf.interpolate(src, (1, n_out), mode="nearest")[0, 0, 0]
            tensors[f"nearest.{n_in}.{n_out}"] = idx.numpy().astype(np.int32)
    save_file(tensors, os.path.join(OUT, "resize", "resize.safetensors"))


THRESHOLDS = np.linspace(0, 1, 51)[1:-1]


def paper_counts(p, g):
    """CLIPSeg metrics.py FixedIntervalMetrics.add for one sample."""
    p = p.flatten()
    g = g.flatten()
    s = p.sort()
    p = s.values
    g = g[s.indices]
    tps, fps, fns, tns = [], [], [], []
    for thresh in THRESHOLDS:
        valid = torch.where(p > thresh)[0]
        n = int(valid[0]) if len(valid) > 0 else len(g)
        fn = int(g[:n].sum())
        tp = int(g[n:].sum())
        fns.append(fn)
        tns.append(n - fn)
        tps.append(tp)
        fps.append(len(g) - n - tp)
    return tps, fps, fns, tns


def simps_avg(y, x):
    """scipy < 1.11 simps(y, x) with its default even='avg', built from scipy's simpson on odd-length runs."""
    y = np.asarray(y, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    n = len(y)
    if n < 2:
        return 0.0
    if n % 2 == 1:
        return float(simpson(y, x=x))
    first = float(simpson(y[:-1], x=x[:-1])) if n - 1 >= 3 else 0.0
    last = float(simpson(y[1:], x=x[1:])) if n - 1 >= 3 else 0.0
    val = 0.5 * (x[-1] - x[-2]) * (y[-1] + y[-2])
    val += 0.5 * (x[1] - x[0]) * (y[1] + y[0])
    return (first + last) / 2.0 + val / 2.0


def paper_value(per_sample):
    summed = {k: [sum(s[i][j] for s in per_sample) for j in range(len(THRESHOLDS))] for i, k in enumerate(["tp", "fp", "fn", "tn"])}
    tp, fp, fn, tn = summed["tp"], summed["fp"], summed["fn"], summed["tn"]
    sel = [j for j in range(len(THRESHOLDS)) if tp[j] + fp[j] > 0]
    pairs = sorted(set((tp[j] / (1 + tp[j] + fn[j]), tp[j] / (1 + tp[j] + fp[j])) for j in sel))
    ap = simps_avg([p for _, p in pairs], [r for r, _ in pairs]) if pairs else 0.0
    fg = [tp[j] / (1 + tp[j] + fp[j] + fn[j]) for j in range(len(THRESHOLDS))]
    binm = [0.5 * fg[j] + 0.5 * tn[j] / (1 + tn[j] + fn[j] + fp[j]) for j in range(len(THRESHOLDS))]
    miou = [float(np.mean([s[0][j] / (1 + s[0][j] + s[1][j] + s[2][j]) for s in per_sample])) for j in range(len(THRESHOLDS))]
    return {
        "ap": ap,
        "fgiou_scores": fg,
        "biniou_scores": binm,
        "miou_scores": miou,
        "best_fgiou": max(fg), "best_fgiou_t": float(THRESHOLDS[int(np.argmax(fg))]),
        "best_miou": max(miou), "best_miou_t": float(THRESHOLDS[int(np.argmax(miou))]),
        "best_biniou": max(binm), "best_biniou_t": float(THRESHOLDS[int(np.argmax(binm))]),
        "pr_curve": [list(p) for p in pairs],
        "summed": summed,
    }


def write_metrics(rng):
    os.makedirs(os.path.join(OUT, "metrics"), exist_ok=True)
    tensors, expected = {}, {"thresholds": THRESHOLDS.tolist(), "sets": {}}
    h, w = 18, 22
    yy, xx = np.mgrid[0:h, 0:w]
    samples = []
    for k in range(6):
        cy, cx, r = rng.uniform(3, h - 3), rng.uniform(3, w - 3), rng.uniform(2, 7)
        gt = (((yy - cy) ** 2 + (xx - cx) ** 2) < r * r).astype(np.float32)
        logits = torch.from_numpy((gt * 2 - 1) * rng.uniform(0.5, 3) + rng.normal(0, 1.5, (h, w))).float()
        samples.append((torch.sigmoid(logits), torch.from_numpy(gt)))
    samples.append((torch.sigmoid(torch.from_numpy(rng.normal(-1, 1, (h, w))).float()), torch.zeros(h, w)))
    # Values at and just around the float32-rounded thresholds, where float32 and float64 comparisons disagree.
    t32 = torch.from_numpy(THRESHOLDS.astype(np.float32))
    edge = torch.stack([t32, torch.nextafter(t32, torch.tensor(1.0)), torch.nextafter(t32, torch.tensor(0.0))]).flatten()
    edge = torch.cat([edge, torch.zeros(h * w - edge.numel())]).view(h, w)
    samples.append((edge, torch.from_numpy((rng.uniform(0, 1, (h, w)) < 0.5).astype(np.float32))))
    sets = {"random": samples, "coarse": None}
    coarse = []
    for k in range(3):
        gt = np.zeros((6, 6), dtype=np.float32)
        gt[1 + k: 4, 1:4] = 1
        prob = np.where(gt > 0, 0.7 + 0.1 * k, 0.1).astype(np.float32)
        prob[0, :k + 1] = 0.55
        coarse.append((torch.from_numpy(prob), torch.from_numpy(gt)))
    sets["coarse"] = coarse
    for name, group in sets.items():
        per_sample = []
        for i, (p, g) in enumerate(group):
            tensors[f"{name}.{i}.prob"] = p.numpy().astype(np.float32)
            tensors[f"{name}.{i}.gt"] = g.numpy().astype(np.float32)
            per_sample.append(paper_counts(p, g))
        value = paper_value(per_sample)
        value["samples"] = len(group)
        value["per_sample_tp"] = [s[0] for s in per_sample]
        value["per_sample_fp"] = [s[1] for s in per_sample]
        expected["sets"][name] = value
    simpson_cases = []
    for n in [1, 2, 3, 4, 5, 6, 9, 10, 17, 24]:
        x = np.sort(rng.uniform(0, 1, n))
        if n >= 6:
            x[3] = x[2]
        y = rng.uniform(0, 1, n)
        simpson_cases.append({"x": x.tolist(), "y": y.tolist(), "value": simps_avg(y, x)})
    expected["simpson"] = simpson_cases
    save_file(tensors, os.path.join(OUT, "metrics", "inputs.safetensors"))
    with open(os.path.join(OUT, "metrics", "expected.json"), "w") as f:
        json.dump(expected, f)


# ----------------------------------------------------------------------------------------------------------------------
# A small dataset in the VGPhraseCut_v0 layout.

IMAGES = [
    # image_id, annotated (w, h), split, kind
    (1001, (48, 36), "train", "rgb"),
    (1002, (40, 40), "train", "rgb"),
    (1003, (30, 44), "train", "grey"),
    (1009, (40, 30), "train", "wrong-size"),
    (1004, (36, 28), "val", "rgb"),
    (1005, (32, 32), "miniv", "rgb"),
    (1006, (40, 30), "test", "rgb"),
    (1007, (40, 30), "test", "corrupt"),
    (1008, (40, 30), "test", "missing"),
    (61530, (40, 30), "test", "rgb"),
]


def task(image_id, ann_ids, phrase, name, atts, rels, polygons):
    boxes = []
    for inst in polygons:
        pts = np.array([pt for poly in inst for pt in poly], dtype=np.float64)
        x0, y0 = pts.min(0)
        x1, y1 = pts.max(0)
        boxes.append([float(x0), float(y0), float(x1 - x0), float(y1 - y0)])
    ptype = "relation" if rels else ("attribute" if atts else "name")
    return {
        "task_id": f"{image_id}__{'_'.join(str(a) for a in ann_ids)}",
        "image_id": image_id,
        "ann_ids": ann_ids,
        "instance_boxes": boxes,
        "Polygons": polygons,
        "phrase": phrase,
        "phrase_structure": {"name": name, "attributes": atts, "relation_ids": [7] * len(rels),
                             "relation_descriptions": rels, "type": ptype},
    }


SQUARE = [[[3.4, 4.2], [15.7, 4.9], [15.1, 16.3], [2.8, 15.5]]]
TASKS = {
    "train": [
        task(1001, [11], "red square", "square", ["red"], [], [SQUARE]),
        task(1001, [12, 13], "blue circle", "circle", ["blue"], [],
             [[regular(30.5, 10.2, 5.5, 12)], [regular(38.2, 27.6, 6.1, 12, 0.2)]]),
        task(1001, [14], "green bar", "bar", ["green"], [],
             [[[[4.5, 22.5], [20.5, 22.5], [20.5, 25.5], [4.5, 25.5]], [[4.5, 28.5], [20.5, 28.5], [20.5, 31.5], [4.5, 31.5]]]]),
        task(1002, [21], "red square", "square", ["red"], [], [[[[20.2, 20.9], [36.1, 21.4], [35.7, 37.2], [19.8, 36.6]]]]),
        task(1002, [22], "café table near wall", "table", ["café"], [["near", "wall"]],
             [[[[2.0, 3.0], [9.0, 30.0]], [[3.3, 3.1], [14.6, 2.7], [16.2, 13.4], [9.1, 17.5], [2.2, 12.2]]]]),
        task(1002, [23], "tiny dot", "dot", ["tiny"], [], [[[[30.0, 5.0]], [[31.0, 5.0], [33.0, 7.0]]]]),
        task(1003, [31], "white circle", "circle", ["white"], [], [[regular(15.2, 20.4, 9.3, 16)]]),
        task(1003, [32], "grey star", "star", ["grey"], [], [[regular(15.0, 35.5, 6.0, 5, inner=2.5)]]),
        task(1003, [33], "no phrase", "x", [], [], [[[[1, 1], [5, 1], [5, 5]]]]),
        task(1003, [34], "bad coordinate", "x", [], [], [[[[1, 1], [5, 1], [5, 5]]]]),
        task(1009, [91], "tall box", "box", ["tall"], [], [[[[5.5, 5.5], [20.5, 5.5], [20.5, 20.5], [5.5, 20.5]]]]),
        task(9999, [99], "unknown image", "thing", [], [], [[[[1, 1], [5, 1], [5, 5]]]]),
        task(1001, [11], "duplicate id", "square", [], [], [SQUARE]),
    ],
    "val": [
        task(1004, [41], "yellow triangle", "triangle", ["yellow"], [], [[[[4.2, 20.1], [16.8, 3.3], [29.9, 22.7]]]]),
        task(1004, [42, 43], "small dots", "dot", ["small"], [],
             [[[[30.1, 2.2], [33.9, 2.6], [33.1, 6.4]]], [[[2.0, 23.0], [5.5, 23.2], [4.4, 26.9]]]]),
    ],
    "miniv": [
        task(1005, [51], "purple diamond", "diamond", ["purple"], [], [[[[16, 3.5], [28.5, 16], [16, 28.5], [3.5, 16]]]]),
    ],
    "test": [
        task(1006, [61], "red square", "square", ["red"], [], [SQUARE]),
        task(1006, [62], "orange ring", "ring", ["orange"], [], [[regular(28.1, 17.3, 8.2, 20)]]),
        task(1007, [71], "broken picture", "picture", ["broken"], [], [[[[2, 2], [10, 2], [10, 10]]]]),
        task(1008, [81], "missing picture", "picture", ["missing"], [], [[[[2, 2], [10, 2], [10, 10]]]]),
        task(61530, [1], "known bad image", "image", [], [], [[[[2, 2], [10, 2], [10, 10]]]]),
    ],
}


def refer_text(split):
    parts = []
    for t in TASKS[split]:
        text = json.dumps(t, ensure_ascii=False)
        if t["phrase"] == "no phrase":
            rec = dict(t)
            del rec["phrase"]
            text = json.dumps(rec)
        elif t["phrase"] == "bad coordinate":
            text = text.replace("[5, 5]", '[5, "five"]')
        elif t["phrase"] == "grey star":
            # A syntax error inside one record: the array structure stays intact, the record is unparsable.
            text = text.replace(']]]]', '],]]]', 1)
        parts.append(text)
    return "[" + ", ".join(parts) + "]"


def draw_image(image_id, size, kind, rng):
    w, h = size
    base = rng.integers(60, 200, (h, w, 3)).astype(np.uint8)
    img = Image.fromarray(base, "RGB")
    draw = ImageDraw.Draw(img)
    for split_tasks in TASKS.values():
        for t in split_tasks:
            if t["image_id"] != image_id:
                continue
            colour = tuple(int(c) for c in rng.integers(0, 256, 3))
            for inst in t["Polygons"]:
                for poly in inst:
                    if len(poly) >= 3:
                        draw.polygon([tuple(p) for p in poly], fill=colour)
    if kind == "grey":
        img = img.convert("L")
    if kind == "wrong-size":
        img = img.resize((h, w))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=95)
    return buf.getvalue()


def write_dataset(rng):
    root = os.path.join(OUT, "VGPhraseCut_v0")
    if os.path.isdir(root):
        shutil.rmtree(root)
    os.makedirs(os.path.join(root, "images"))
    split_info = [{"image_id": i, "width": s[0], "height": s[1], "url": f"https://example.invalid/{i}.jpg",
                   "coco_id": None, "flickr_id": None, "split": split} for i, s, split, _ in IMAGES]
    with open(os.path.join(root, "image_data_split.json"), "w") as f:
        json.dump(split_info, f)
    for image_id, size, _, kind in IMAGES:
        path = os.path.join(root, "images", f"{image_id}.jpg")
        if kind == "missing":
            continue
        data = bytes(rng.integers(0, 256, 300).astype(np.uint8)) if kind == "corrupt" else draw_image(image_id, size, kind, rng)
        with open(path, "wb") as f:
            f.write(data)
    cats, atts, rels = {}, {}, {}
    for split in TASKS:
        with open(os.path.join(root, f"refer_{split}.json"), "w", encoding="utf-8") as f:
            f.write(refer_text(split))
        inputs = [{"task_id": t["task_id"], "image_id": t["image_id"], "phrase": t["phrase"],
                   "phrase_structure": {k: t["phrase_structure"][k] for k in ("name", "attributes", "relation_descriptions")}}
                  for t in TASKS[split]]
        with open(os.path.join(root, f"refer_input_{split}.json"), "w", encoding="utf-8") as f:
            json.dump(inputs, f, ensure_ascii=False)
        for t in TASKS[split]:
            ps = t["phrase_structure"]
            cats[ps["name"]] = cats.get(ps["name"], 0) + 1
            for a in ps["attributes"]:
                atts[a] = atts.get(a, 0) + 1
            for r in ps["relation_descriptions"]:
                rels[r[0]] = rels.get(r[0], 0) + 1
    counts = {k: sorted(v.items(), key=lambda kv: (-kv[1], kv[0])) for k, v in (("cat", cats), ("att", atts), ("rel", rels))}
    with open(os.path.join(root, "name_att_rel_count.json"), "w", encoding="utf-8") as f:
        json.dump(counts, f, ensure_ascii=False)

    sizes = {i: s for i, s, _, _ in IMAGES}
    masks, expected = {}, {"splits": {}}
    for split, tasks in TASKS.items():
        kept = []
        for t in tasks:
            if t["image_id"] not in sizes or t["image_id"] in BAD_IMAGE_IDS:
                continue
            if t["phrase"] in ("no phrase", "bad coordinate", "grey star", "duplicate id", "tiny dot"):
                continue
            w, h = sizes[t["image_id"]]
            polys = [p for inst in t["Polygons"] for p in inst if len(p) >= 3]
            masks[f"{t['task_id']}.clipseg"] = clipseg_mask(polys, h, w)
            masks[f"{t['task_id']}.official"] = official_mask(polys, h, w)
            kept.append({"task_id": t["task_id"], "image_id": t["image_id"], "phrase": t["phrase"],
                         "polygons": sum(len(p) >= 3 for inst in t["Polygons"] for p in inst),
                         "instances": len(t["Polygons"])})
        expected["splits"][split] = kept
    save_file(masks, os.path.join(OUT, "dataset_masks.safetensors"))
    with open(os.path.join(OUT, "dataset_expected.json"), "w", encoding="utf-8") as f:
        json.dump(expected, f, ensure_ascii=False, indent=1)


def main():
    os.makedirs(OUT, exist_ok=True)
    write_raster(np.random.default_rng(20240601))
    write_resize(np.random.default_rng(20240602))
    write_metrics(np.random.default_rng(20240603))
    write_dataset(np.random.default_rng(20240604))
    with open(os.path.join(OUT, "versions.json"), "w") as f:
        json.dump({"numpy": np.__version__, "scipy": scipy.__version__, "scikit-image": skimage.__version__,
                   "pillow": PIL.__version__, "torch": torch.__version__}, f, indent=1)


if __name__ == "__main__":
    main()
