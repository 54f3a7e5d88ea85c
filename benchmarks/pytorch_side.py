"""The PyTorch side of the benchmark: transformers' CLIPSegProcessor and CLIPSegForImageSegmentation on torch CPU.

Inference runs in eval mode under no_grad, with the image repeated once per prompt as the HF model requires.
The training step freezes CLIP and trains the decoder with AdamW, as the training recipe does.
Speaks the contract of benchmarks/side_io.ts: --case NAME --warmup N --runs N --out FILE [--torch-threads N];
writes one JSON result.

Run by benchmarks/run.ts; by hand: python benchmarks/pytorch_side.py --case segment_1x1 --out /tmp/r.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
MODEL_DIR = BENCH / "models" / "clipseg-rd64-refined-random"
IMAGES_DIR = BENCH / "models" / "images"
TRAIN_BATCH = BENCH / "models" / "train_batch.safetensors"

# Keep in step with benchmarks/cases.ts.
PROMPTS = [
    "a cat",
    "a white plate on the table",
    "the man wearing a black hat",
    "red car parked on the street",
    "large window",
    "tree behind the fence",
    "a glass of water",
    "sky",
]
SEGMENT_CASES = {"segment_1x1": (1, 1), "segment_1x8": (1, 8), "segment_4x1": (4, 4)}
CASES = [*SEGMENT_CASES, "train_step_b8", "load"]
OPTIMIZER = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_result(path: str, result: dict) -> None:
    tmp = f"{path}.tmp-{os.getpid()}-{random.getrandbits(32):08x}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(result, f)
        f.write("\n")
    os.replace(tmp, path)


def time_runs(warmup: int, runs: int, once):
    """`once` returns the seconds of its model part, or None; the run itself is timed around the call."""
    for _ in range(warmup):
        once()
    e2e, model = [], []
    for _ in range(runs):
        start = time.perf_counter()
        model_s = once()
        e2e.append(time.perf_counter() - start)
        if model_s is not None:
            model.append(model_s)
    return e2e, model


def load_all():
    from transformers import CLIPSegForImageSegmentation, CLIPSegProcessor

    processor = CLIPSegProcessor.from_pretrained(str(MODEL_DIR))
    model = CLIPSegForImageSegmentation.from_pretrained(str(MODEL_DIR)).eval()
    return processor, model


def segment(case: str, warmup: int, runs: int):
    import torch
    from PIL import Image

    images, prompts = SEGMENT_CASES[case]
    processor, model = load_all()
    files = [IMAGES_DIR / f"bench_{i}.jpg" for i in range(images)]
    texts = PROMPTS[:prompts]

    def once():
        pil = [Image.open(f).convert("RGB") for f in files]
        # HF pairs prompts with images one to one: a single image is repeated for each prompt.
        batch = pil * (prompts // len(pil))
        inputs = processor(text=texts, images=batch, padding=True, return_tensors="pt")
        start = time.perf_counter()
        with torch.no_grad():
            logits = model(**inputs).logits
        if tuple(logits.shape) != (prompts, 352, 352):
            raise RuntimeError(f"logits: expected ({prompts}, 352, 352), got {tuple(logits.shape)}")
        return time.perf_counter() - start

    return time_runs(warmup, runs, once), {"image_processor": type(processor.image_processor).__name__,
                                           "tokenizer": type(processor.tokenizer).__name__}


def train_step(warmup: int, runs: int):
    import torch
    from safetensors.torch import load_file

    _, model = load_all()
    batch = load_file(str(TRAIN_BATCH))
    inputs = {
        "pixel_values": batch["pixel_values"],
        "input_ids": batch["input_ids"].long(),
        "attention_mask": batch["attention_mask"].long(),
        "labels": batch["labels"],
    }
    for p in model.clip.parameters():
        p.requires_grad_(False)
    model.train()
    model.clip.eval()
    params = [p for p in model.decoder.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, **OPTIMIZER)

    def once():
        optimizer.zero_grad(set_to_none=True)
        loss = model(**inputs).loss
        loss.backward()
        optimizer.step()
        if not torch.isfinite(loss):
            raise RuntimeError(f"loss: expected a finite value, got {loss.item()}")
        return None

    return time_runs(warmup, runs, once), {"trainable_parameters": str(sum(p.numel() for p in params))}


def load(warmup: int, runs: int):
    import gc

    def once():
        processor, model = load_all()
        del processor, model
        gc.collect()
        return None

    return time_runs(warmup, runs, once), {}


def main() -> None:
    parser = argparse.ArgumentParser(description="PyTorch side of benchmarks/run.ts")
    parser.add_argument("--case", required=True, choices=CASES)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", required=True)
    parser.add_argument("--torch-threads", type=int, default=0, help="torch.set_num_threads (0: torch's default)")
    args = parser.parse_args()

    try:
        import torch
        import transformers
    except ImportError as err:
        write_result(args.out, {"impl": "pytorch", "case": args.case, "available": False,
                                "reason": f"{sys.executable} cannot import torch/transformers ({err})"})
        return
    if args.torch_threads > 0:
        torch.set_num_threads(args.torch_threads)

    if args.case in SEGMENT_CASES:
        (e2e, model), extra = segment(args.case, args.warmup, args.runs)
    elif args.case == "train_step_b8":
        (e2e, model), extra = train_step(args.warmup, args.runs)
    else:
        (e2e, model), extra = load(args.warmup, args.runs)

    result = {
        "impl": "pytorch",
        "case": args.case,
        "available": True,
        "e2e_s": e2e,
        "peak_rss_mb": peak_rss_mb(),
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "python": platform.python_version()},
        "threads": {"torch_intra_op": torch.get_num_threads(), "torch_inter_op": torch.get_num_interop_threads()},
        "notes": [f"{k}: {v}" for k, v in extra.items()],
    }
    if model:
        result["model_s"] = model
    write_result(args.out, result)


if __name__ == "__main__":
    main()
