"""Checks a folder written by `exportToHF` in PyTorch: transformers loads it and reproduces this package's outputs.

Run: /work/.refvenv/bin/python tools/reference/check_export.py DIR INPUTS EXPECTED [--atol 1e-4]

  DIR       the exported folder (model.safetensors, config.json, processor files)
  INPUTS    safetensors with pixel_values and input_ids (attention_mask optional), as `clipseg inspect` reads them
  EXPECTED  safetensors with this package's logits (conditional_embeddings and pooled_output compared when present)

Loads the model with CLIPSegForImageSegmentation.from_pretrained (strict: any missing or unexpected key fails) and
the processor with CLIPSegProcessor.from_pretrained, runs the inputs in float32 on the CPU and prints the largest
absolute difference per output. Exits with status 1 when a difference exceeds the tolerance.
"""

from __future__ import annotations

import argparse
import sys

import torch
from safetensors import safe_open
from safetensors.torch import load_file
from transformers import CLIPSegForImageSegmentation, CLIPSegProcessor

OUTPUTS = ("logits", "conditional_embeddings", "pooled_output")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dir")
    parser.add_argument("inputs")
    parser.add_argument("expected")
    parser.add_argument("--atol", type=float, default=1e-4)
    args = parser.parse_args()

    with safe_open(f"{args.dir}/model.safetensors", framework="pt") as f:
        metadata = f.metadata() or {}
    if metadata.get("format") != "pt":
        print(f"model.safetensors metadata format is {metadata.get('format')!r}, transformers expects 'pt'")
        return 1
    model, info = CLIPSegForImageSegmentation.from_pretrained(args.dir, output_loading_info=True)
    problems = {k: v for k, v in info.items() if v}
    if problems:
        print(f"loading reported problems: {problems}")
        return 1
    model.eval()
    processor = CLIPSegProcessor.from_pretrained(args.dir)
    ids = processor.tokenizer("a photo of a cat")["input_ids"]
    print(f"processor: {type(processor.tokenizer).__name__} ids for 'a photo of a cat' {ids}, "
          f"image size {processor.image_processor.size}, mean {processor.image_processor.image_mean}")

    inputs = load_file(args.inputs)
    expected = load_file(args.expected)
    kwargs = {"pixel_values": inputs["pixel_values"].float(), "input_ids": inputs["input_ids"].long()}
    if "attention_mask" in inputs:
        kwargs["attention_mask"] = inputs["attention_mask"].long()
    with torch.no_grad():
        out = model(**kwargs, return_dict=True)
    failed = False
    for name in OUTPUTS:
        if name not in expected:
            continue
        got = getattr(out, name)
        if tuple(got.shape) != tuple(expected[name].shape):
            print(f"{name}: shape {tuple(got.shape)}, expected {tuple(expected[name].shape)}")
            failed = True
            continue
        diff = (got - expected[name].float()).abs().max().item()
        ok = diff <= args.atol
        failed |= not ok
        print(f"{name}: max |diff| {diff:.3e} ({'ok' if ok else 'FAIL'}, atol {args.atol:g})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
