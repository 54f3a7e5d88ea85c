"""Compare clipseg-tfjs activations with Hugging Face transformers on PyTorch, module by module.

    python examples/compare_with_pytorch.py MODEL_DIR inputs.safetensors ours.safetensors

MODEL_DIR is a model folder in Hugging Face layout (a hub snapshot, or `exportToHF` output); inputs.safetensors comes
from `clipseg preprocess`, ours.safetensors from `clipseg inspect --inputs inputs.safetensors --capture ...`. Every
module named in ours.safetensors gets a forward hook; the script prints the largest absolute difference per
tensor and exits with status 1 when one exceeds --tolerance (default 1e-4).

Needs torch, transformers and safetensors (see tools/reference/requirements.txt for tested versions).
"""

from __future__ import annotations

import argparse
import sys

import torch
from safetensors.torch import load_file
from transformers import CLIPSegForImageSegmentation

OUTPUTS = {"logits", "conditional_embeddings", "pixel_values"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("inputs")
    parser.add_argument("ours")
    parser.add_argument("--tolerance", type=float, default=1e-4)
    args = parser.parse_args()

    model = CLIPSegForImageSegmentation.from_pretrained(args.model, attn_implementation="eager").eval()
    inputs = load_file(args.inputs)
    ours = load_file(args.ours)
    prompts = inputs["input_ids"].shape[0] if "input_ids" in inputs else inputs["conditional_pixel_values"].shape[0]
    pixel_values = inputs["pixel_values"]
    # PyTorch pairs one image per prompt; clipseg-tfjs shares one image pass, so its image-side tensors have batch 1.
    if pixel_values.shape[0] == 1 and prompts > 1:
        pixel_values = pixel_values.repeat(prompts, 1, 1, 1)

    seen: dict[str, torch.Tensor] = {}
    modules = dict(model.named_modules())
    wanted = {key.split(":")[0].split("#")[0] for key in ours if key not in OUTPUTS}

    def keep(key: str, tensor: torch.Tensor) -> None:
        unique, i = key, 1
        while unique in seen:
            unique, i = f"{key}#{i}", i + 1
        seen[unique] = tensor.detach()

    def hook_for(name: str):
        def hook(module, hook_args, kwargs, output):
            given = hook_args[0] if hook_args and isinstance(hook_args[0], torch.Tensor) else kwargs.get("hidden_states")
            if isinstance(given, torch.Tensor):
                keep(f"{name}:input", given)
            first = output[0] if isinstance(output, tuple) else output
            if isinstance(first, torch.Tensor):
                keep(name, first)
            if isinstance(output, tuple) and len(output) > 1 and isinstance(output[1], torch.Tensor):
                keep(f"{name}:attn_weights", output[1])

        return hook

    missing = sorted(name for name in wanted if name not in modules)
    if missing:
        print(f"not modules of this model: {', '.join(missing)}", file=sys.stderr)
        return 2
    handles = [modules[name].register_forward_hook(hook_for(name), with_kwargs=True) for name in wanted]
    feed = {"pixel_values": pixel_values}
    for key in ("input_ids", "attention_mask", "conditional_pixel_values", "conditional_embeddings"):
        if key in inputs:
            feed[key] = inputs[key]
    with torch.no_grad():
        out = model(**feed, output_attentions=True)
    for h in handles:
        h.remove()
    seen["logits"] = out.logits
    seen["conditional_embeddings"] = out.conditional_embeddings
    seen["pixel_values"] = pixel_values[:1]

    worst = 0.0
    for key in sorted(ours):
        if key not in seen:
            print(f"{key:70s} not produced by PyTorch (attention probabilities need output_attentions)")
            continue
        theirs = seen[key].float()
        mine = ours[key].float()
        if mine.shape[0] == 1 and theirs.shape[0] > 1:
            theirs = theirs[:1]
        if tuple(mine.shape) != tuple(theirs.shape):
            print(f"{key:70s} shape {tuple(mine.shape)} vs PyTorch {tuple(theirs.shape)}")
            worst = float("inf")
            continue
        diff = (mine - theirs).abs().max().item()
        worst = max(worst, diff)
        print(f"{key:70s} max |diff| {diff:.2e}")
    print(f"largest difference {worst:.2e} (tolerance {args.tolerance:g})")
    return 0 if worst <= args.tolerance else 1


if __name__ == "__main__":
    sys.exit(main())
