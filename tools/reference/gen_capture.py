"""Reference fixtures for activation capture and the end-to-end segmentation API, from transformers on PyTorch.

Run: /work/.refvenv/bin/python tools/reference/gen_capture.py

Writes test/fixtures/capture/:
  model/config.json, model.safetensors    a tiny random CLIPSeg (HF layout) whose text tower takes the real CLIP
  model/preprocessor_config.json          vocabulary (49,408 ids), so real prompts run through it; 64-px inputs
                                          with patch 16 and a 3x3 position table (interpolated to 4x4)
  cases.json                              image, prompts and the token ids the HF processor produced
  text.safetensors                        pixel_values, input_ids, attention_mask, logits and the forward-hook
                                          views of the modules in HOOKED for the text-prompt forward; the image is
                                          repeated per prompt (PyTorch wants equal batches), so image-side entries
                                          keep row 0 only
  visual.safetensors                      the same for a visual prompt (HF `visual_prompt=`: a plain image)

Hook naming (what `clipseg inspect --capture` must reproduce): `<module>` is the module's output (the first
element when the module returns a tuple), `<module>:input` its first positional or `hidden_states` argument, and
`<module>:attn_weights` an attention module's probabilities; a module's second run in one forward (the vision tower
on a visual prompt) adds `#1` to its keys. Conv stages of the head are NCHW, as PyTorch sees them.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
import math
from pathlib import Path

import torch
from PIL import Image
from safetensors.torch import save_file
from transformers import CLIPSegConfig, CLIPSegForImageSegmentation, CLIPSegProcessor, ViTImageProcessor

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_tokenizer import load_tokenizers  # noqa: E402  (the full CLIP tokenizer built from the shipped vocabulary)

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "test" / "fixtures" / "capture"
IMAGES = REPO / "test" / "fixtures" / "images"

torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)

SIZE = 64
CONFIG = dict(
    text_config=dict(vocab_size=49408, hidden_size=4, intermediate_size=8, num_hidden_layers=2,
                     num_attention_heads=2, max_position_embeddings=77, bos_token_id=0, eos_token_id=2),
    vision_config=dict(hidden_size=16, intermediate_size=24, num_hidden_layers=3, num_attention_heads=4,
                       image_size=48, patch_size=16),
    projection_dim=8, extract_layers=[0, 1, 2], reduce_dim=8, decoder_num_attention_heads=2,
    decoder_intermediate_size=12, conditional_layer=0, use_complex_transposed_convolution=True,
)
PROMPTS = ["a photo of an astronaut", "a flag", "the sky"]
IMAGE = "astronaut_400x380.png"
VISUAL_PROMPT = "coffee_160x100.png"


def randomize(model: torch.nn.Module, generator: torch.Generator) -> None:
    """Wider than transformers' init so that a wrong capture differs by a lot, not by rounding noise."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("logit_scale"):
                p.fill_(math.log(10.0))
            elif name.endswith(".weight") and ("norm" in name or "layrnorm" in name):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=generator))
            else:
                p.copy_(0.3 * torch.randn(p.shape, generator=generator))


HOOKED = re.compile(
    r"^(clip\.(vision|text)_model\.(embeddings|pre_layrnorm|post_layernorm|final_layer_norm)"
    r"|clip\.(vision|text)_model\.encoder\.layers\.\d+(\.(self_attn|mlp|layer_norm1|layer_norm2))?"
    r"|clip\.(visual|text)_projection"
    r"|decoder\.(film_mul|film_add|reduces\.\d+|transposed_convolution(\.\d+)?)"
    r"|decoder\.layers\.\d+(\.(self_attn|mlp|layer_norm1|layer_norm2))?)$"
)
IMAGE_SIDE = ("clip.vision_model", "clip.visual_projection", "pixel_values")


def first_tensor(value):
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (tuple, list)) and value and isinstance(value[0], torch.Tensor):
        return value[0]
    return None


def hooked_forward(model, inputs: dict) -> dict[str, torch.Tensor]:
    """Runs `model(**inputs)` with a forward hook on every named module and returns what the hooks saw."""
    seen: dict[str, torch.Tensor] = {}
    handles = []

    def keep(key: str, tensor: torch.Tensor) -> None:
        # A module that runs twice (the vision tower on the image, then on a visual prompt) keeps its first
        # view under the plain key and numbers the later ones.
        unique, i = key, 1
        while unique in seen:
            unique, i = f"{key}#{i}", i + 1
        seen[unique] = tensor.detach().clone()

    def make_hook(name: str):
        def hook(module, args, kwargs, output):
            given = args[0] if args and isinstance(args[0], torch.Tensor) else kwargs.get("hidden_states")
            if isinstance(given, torch.Tensor) and not name.startswith("clip.vision_model.embeddings"):
                keep(f"{name}:input", given)
            out = first_tensor(output)
            if out is not None:
                keep(name, out)
            if isinstance(output, tuple) and len(output) > 1 and name.endswith("self_attn") and output[1] is not None:
                keep(f"{name}:attn_weights", output[1])

        return hook

    for name, module in model.named_modules():
        if HOOKED.match(name):
            handles.append(module.register_forward_hook(make_hook(name), with_kwargs=True))
    try:
        with torch.no_grad():
            out = model(**inputs, output_attentions=True)
    finally:
        for h in handles:
            h.remove()
    seen["logits"] = out.logits.detach().clone()
    seen["conditional_embeddings"] = out.conditional_embeddings.detach().clone()
    return seen


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(11)
    config = CLIPSegConfig(**CONFIG)
    config._attn_implementation = "eager"
    model = CLIPSegForImageSegmentation(config).eval()
    randomize(model, generator)
    model.save_pretrained(OUT / "model", safe_serialization=True)

    image_processor = ViTImageProcessor(
        do_resize=True, size={"height": SIZE, "width": SIZE}, resample=2, do_rescale=True,
        rescale_factor=1 / 255, do_normalize=True, image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225],
    )
    image_processor.save_pretrained(OUT / "model")
    with tempfile.TemporaryDirectory() as work:
        _, tokenizer, _ = load_tokenizers(work)
    processor = CLIPSegProcessor(image_processor=image_processor, tokenizer=tokenizer)

    image = Image.open(IMAGES / IMAGE).convert("RGB")
    text_inputs = processor(text=PROMPTS, images=[image] * len(PROMPTS), padding=True, return_tensors="pt")
    text = hooked_forward(model, dict(text_inputs))
    text.update({k: v for k, v in text_inputs.items()})
    text = {k: (v[:1] if k.startswith(IMAGE_SIDE) else v) for k, v in text.items()}
    save_file({k: v.contiguous() for k, v in text.items()}, OUT / "text.safetensors")

    prompt_image = Image.open(IMAGES / VISUAL_PROMPT).convert("RGB")
    visual_inputs = processor(images=[image], visual_prompt=[prompt_image], return_tensors="pt")
    visual = hooked_forward(model, dict(visual_inputs))
    visual.update({k: v for k, v in visual_inputs.items()})
    save_file({k: v.contiguous() for k, v in visual.items()}, OUT / "visual.safetensors")

    cases = {
        "image": f"test/fixtures/images/{IMAGE}",
        "visual_prompt": f"test/fixtures/images/{VISUAL_PROMPT}",
        "prompts": PROMPTS,
        "input_ids": [tokenizer(p)["input_ids"] for p in PROMPTS],
        "size": SIZE,
    }
    (OUT / "cases.json").write_text(json.dumps(cases, indent=1) + "\n")


if __name__ == "__main__":
    main()
