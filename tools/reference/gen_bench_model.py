"""Builds the benchmark model: the full CIDAS/clipseg-rd64-refined architecture with seeded random weights.

Run: /work/.refvenv/bin/python tools/reference/gen_bench_model.py [--no-onnx]

Writes benchmarks/models/ (git-ignored, about 1.2 GB, a few minutes on 2 cores):
  clipseg-rd64-refined-random/           HF layout, as save_pretrained writes it for the CIDAS repositories:
    config.json, model.safetensors         random weights with the real shapes (150M parameters, fp32)
    preprocessor_config.json               ViTImageProcessor, 352x352, ImageNet mean/std
    vocab.json, merges.txt, tokenizer_config.json, special_tokens_map.json, tokenizer.json
    onnx/model.onnx                        the same weights as one ONNX graph (input_ids, attention_mask,
                                           pixel_values -> logits), the layout transformers.js loads; the image
                                           and text batch axes are independent so one image broadcasts to N prompts
  images/bench_<i>.jpg                   four seeded 640x480 JPEG photos-alike (the end-to-end inputs)
  train_batch.safetensors                a seeded training batch of 8: pixel_values, input_ids, attention_mask, labels

The architecture values are the effective ones of the CIDAS config.json (patch 16, reduce_dim 64, refined head,
legacy bos 0 / eos 2). The vocabulary is the real CLIP BPE rebuilt from assets/clip/bpe_simple_vocab_16e6.txt.gz.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file
from transformers import CLIPSegConfig, CLIPSegForImageSegmentation, CLIPTokenizer, CLIPTokenizerFast

from gen_tokenizer import TOKENIZER_CONFIG, build_hf_files

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "benchmarks" / "models"
MODEL = OUT / "clipseg-rd64-refined-random"
SEED = 20221104

PREPROCESSOR_CONFIG = {
    "do_normalize": True,
    "do_rescale": True,
    "do_resize": True,
    "feature_extractor_type": "ViTFeatureExtractor",
    "image_mean": [0.485, 0.456, 0.406],
    "image_processor_type": "ViTImageProcessor",
    "image_std": [0.229, 0.224, 0.225],
    "processor_class": "CLIPSegProcessor",
    "resample": 2,
    "rescale_factor": 0.00392156862745098,
    "size": {"height": 352, "width": 352},
}
TRAIN_PROMPTS = [
    "a cat", "white plate on table", "man wearing black hat", "red car parked on street",
    "large window", "tree behind fence", "glass of water", "sky",
]


def config() -> CLIPSegConfig:
    return CLIPSegConfig(
        text_config={"bos_token_id": 0, "eos_token_id": 2},
        vision_config={"patch_size": 16},
        reduce_dim=64,
        use_complex_transposed_convolution=True,
    )


def write_tokenizer(directory: Path) -> CLIPTokenizerFast:
    """The real CLIP vocabulary in HF's layout; the fast tokenizer's save adds tokenizer.json for transformers.js."""
    with tempfile.TemporaryDirectory() as work:
        raw = Path(work)
        build_hf_files(str(raw))
        slow = CLIPTokenizer(str(raw / "vocab.json"), str(raw / "merges.txt"))
        slow.save_pretrained(str(directory))
        fast = CLIPTokenizerFast.from_pretrained(str(directory))
        fast.save_pretrained(str(directory))
    (directory / "tokenizer_config.json").write_text(json.dumps(TOKENIZER_CONFIG, indent=2) + "\n", "utf-8")
    fast = CLIPTokenizerFast.from_pretrained(str(directory))
    assert fast("a photo of a cat")["input_ids"] == [49406, 320, 1125, 539, 320, 2368, 49407]
    return fast


def write_images(directory: Path, rng: np.random.Generator) -> None:
    """Smooth colour fields with a few bright blobs and sensor-like noise: JPEG-compressible like a photo."""
    directory.mkdir(parents=True, exist_ok=True)
    height, width = 480, 640
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    for i in range(4):
        base = rng.uniform(40, 200, size=3)
        tilt = rng.uniform(-0.15, 0.15, size=(2, 3))
        img = base + xx[..., None] * tilt[0] + yy[..., None] * tilt[1]
        for _ in range(5):
            cy, cx = rng.uniform(0, height), rng.uniform(0, width)
            radius = rng.uniform(30, 120)
            blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * radius**2))
            img += blob[..., None] * rng.uniform(-120, 120, size=3)
        img += rng.normal(0, 6, size=img.shape)
        pixels = np.clip(np.rint(img), 0, 255).astype(np.uint8)
        atomic(directory / f"bench_{i}.jpg", lambda p, px=pixels: Image.fromarray(px, "RGB").save(p, "JPEG", quality=90))


def write_train_batch(path: Path, tokenizer: CLIPTokenizerFast, rng: np.random.Generator) -> None:
    enc = tokenizer(TRAIN_PROMPTS, padding=True, return_tensors="pt")
    pixels = torch.from_numpy(rng.normal(0, 1, size=(8, 3, 352, 352)).astype(np.float32))
    labels = torch.from_numpy((rng.uniform(size=(8, 352, 352)) < 0.3).astype(np.float32))
    tensors = {
        "pixel_values": pixels,
        "input_ids": enc["input_ids"].to(torch.int32),
        "attention_mask": enc["attention_mask"].to(torch.int32),
        "labels": labels,
    }
    atomic(path, lambda p: save_file(tensors, p))


class LogitsOnly(torch.nn.Module):
    """The graph transformers.js runs: three named inputs, logits out."""

    def __init__(self, model: CLIPSegForImageSegmentation):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, pixel_values):
        return self.model(input_ids=input_ids, attention_mask=attention_mask, pixel_values=pixel_values).logits


def export_onnx(model: CLIPSegForImageSegmentation, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    ids = torch.tensor([[49406, 320, 2368, 49407]], dtype=torch.int64)
    mask = torch.ones_like(ids)
    pixels = torch.zeros(1, 3, 352, 352)
    # The TorchScript tracer keeps the image and text batch axes apart (the Python batch check is evaluated once at
    # trace time), so the graph accepts one image with N prompts, as the published transformers.js exports do.
    target = directory / "model.onnx"
    tmp = directory / f".model.onnx.tmp-{os.getpid()}-{random.getrandbits(32):08x}"
    torch.onnx.export(
        LogitsOnly(model).eval(),
        (ids, mask, pixels),
        str(tmp),
        dynamo=False,
        input_names=["input_ids", "attention_mask", "pixel_values"],
        output_names=["logits"],
        dynamic_axes={
            "input_ids": {0: "text_batch", 1: "sequence"},
            "attention_mask": {0: "text_batch", 1: "sequence"},
            "pixel_values": {0: "image_batch"},
            "logits": {0: "text_batch"},
        },
        opset_version=17,
        do_constant_folding=True,
    )
    os.replace(tmp, target)


def atomic(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{random.getrandbits(32):08x}")
    try:
        write(str(tmp))
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-onnx", action="store_true", help="skip the ONNX export (transformers.js side)")
    args = parser.parse_args()

    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED)
    staging = OUT / f".staging-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        model = CLIPSegForImageSegmentation(config()).eval()
        model.save_pretrained(str(staging), safe_serialization=True)
        (staging / "preprocessor_config.json").write_text(json.dumps(PREPROCESSOR_CONFIG, indent=2) + "\n", "utf-8")
        tokenizer = write_tokenizer(staging)
        if not args.no_onnx:
            export_onnx(model, staging / "onnx")
        shutil.rmtree(MODEL, ignore_errors=True)
        os.replace(staging, MODEL)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    write_images(OUT / "images", rng)
    write_train_batch(OUT / "train_batch.safetensors", tokenizer, rng)
    params = sum(p.numel() for p in model.parameters())
    print(f"wrote {MODEL} ({params / 1e6:.1f}M parameters{'' if args.no_onnx else ', with onnx/model.onnx'})", file=sys.stderr)


if __name__ == "__main__":
    main()
