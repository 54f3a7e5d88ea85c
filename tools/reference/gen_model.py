"""Reference fixtures for the CLIPSeg model port, computed with transformers' PyTorch implementation.

Run: /work/.refvenv/bin/python tools/reference/gen_model.py

Writes test/fixtures/model/:
  <case>/config.json, model.safetensors   save_pretrained(safe_serialization=True): HF layout, random weights
  <case>/inputs.safetensors               the text-prompt inputs (pixel_values, input_ids, attention_mask, labels)
  <case>/outputs.safetensors              what `clipseg inspect` writes for inputs.safetensors (hidden states,
                                          attentions when the case keeps them, and grad.<decoder key>)
  <case>/inputs_<mode>.safetensors        other prompt kinds: visual (conditional_pixel_values), embeds
  <case>/outputs_<mode>.safetensors       (conditional_embeddings), broadcast (one image, several prompts)
  <case>/outputs_clip.safetensors         CLIPSegModel / text and vision tower outputs for inputs.safetensors
  <case>/outputs_full_grads.safetensors   gradients of the loss w.r.t. every parameter, CLIP included
  bicubic.safetensors                     torch bicubic resizes (align_corners=False) of random grids
  configs.json                            effective values of config.json variants as transformers reads them
  dtypes.safetensors                      every safetensors dtype as the Python library writes it, with float64
                                          copies of the values a reader must return

Weights are drawn wider than transformers' init (std 0.2, LayerNorm weights near 1) so that a port error shows
up as a large difference instead of hiding in tiny activations.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import CLIPSegConfig, CLIPSegForImageSegmentation, CLIPSegModel

ROOT = Path(__file__).resolve().parents[2] / "test" / "fixtures" / "model"

torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)

CASES = [
    {
        # Refined head, legacy eos_token_id 2 (argmax pooling), input equal to the position table (no interpolation).
        "name": "refined_argmax",
        "seed": 1,
        "config": dict(
            text_config=dict(vocab_size=100, hidden_size=16, intermediate_size=24, num_hidden_layers=2,
                             num_attention_heads=4, max_position_embeddings=12, bos_token_id=0, eos_token_id=2),
            vision_config=dict(hidden_size=16, intermediate_size=24, num_hidden_layers=3, num_attention_heads=4,
                               image_size=32, patch_size=8),
            projection_dim=12, extract_layers=[0, 2], reduce_dim=8, decoder_num_attention_heads=2,
            decoder_intermediate_size=20, conditional_layer=0, use_complex_transposed_convolution=True,
        ),
        "batch": 2, "size": 32, "visual_size": 24, "tokens": dict(bos=98, eos=99, low=3, lengths=[7, 4], pad_to=9),
        "modes": ["visual", "embeds", "broadcast"], "attentions": True, "full_grads": True,
    },
    {
        # Plain head, eos_token_id 3 that is not the largest id (first-eos pooling), upsampled positions 4x4 -> 6x6,
        # FiLM at decoder step 1.
        "name": "plain_eos",
        "seed": 2,
        "config": dict(
            text_config=dict(vocab_size=50, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                             num_attention_heads=1, max_position_embeddings=10, bos_token_id=4, eos_token_id=3),
            vision_config=dict(hidden_size=12, intermediate_size=20, num_hidden_layers=4, num_attention_heads=3,
                               image_size=16, patch_size=4),
            projection_dim=10, extract_layers=[1, 2, 3], reduce_dim=16, decoder_num_attention_heads=4,
            decoder_intermediate_size=24, conditional_layer=1, use_complex_transposed_convolution=False,
        ),
        "batch": 3, "size": 24, "visual_size": 16, "tokens": dict(bos=4, eos=3, low=5, lengths=[6, 3, 10], pad_to=10),
        "modes": ["visual", "embeds"], "attentions": True, "full_grads": False,
    },
    {
        # Refined head with 1x1 transposed kernels (patch 4), reduce_dim 12 over 3 heads, downsampled positions 5x5 -> 4x4.
        "name": "refined_rd12",
        "seed": 3,
        "config": dict(
            text_config=dict(vocab_size=300, hidden_size=8, intermediate_size=16, num_hidden_layers=1,
                             num_attention_heads=2, max_position_embeddings=8, bos_token_id=0, eos_token_id=2),
            vision_config=dict(hidden_size=8, intermediate_size=12, num_hidden_layers=3, num_attention_heads=2,
                               image_size=20, patch_size=4),
            projection_dim=6, extract_layers=[2, 1], reduce_dim=12, decoder_num_attention_heads=3,
            decoder_intermediate_size=10, conditional_layer=1, use_complex_transposed_convolution=True,
        ),
        "batch": 2, "size": 16, "visual_size": 20, "tokens": dict(bos=298, eos=299, low=3, lengths=[5, 8], pad_to=8),
        "modes": ["visual", "embeds"], "attentions": True, "full_grads": False,
    },
    {
        # The real geometry: patch 16 on a 224 table (14x14), 352 input (22x22 grid, 485 tokens), narrow widths.
        "name": "narrow352",
        "seed": 4,
        "config": dict(
            text_config=dict(vocab_size=200, hidden_size=8, intermediate_size=16, num_hidden_layers=2,
                             num_attention_heads=2, max_position_embeddings=16, bos_token_id=0, eos_token_id=2),
            vision_config=dict(hidden_size=8, intermediate_size=16, num_hidden_layers=3, num_attention_heads=2,
                               image_size=224, patch_size=16),
            projection_dim=8, extract_layers=[0, 1], reduce_dim=4, decoder_num_attention_heads=2,
            decoder_intermediate_size=8, conditional_layer=0, use_complex_transposed_convolution=True,
        ),
        "batch": 1, "size": 352, "visual_size": 64, "tokens": dict(bos=198, eos=199, low=3, lengths=[6], pad_to=6),
        "modes": [], "attentions": False, "full_grads": True,
    },
]


def randomize(model: torch.nn.Module, generator: torch.Generator) -> None:
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("logit_scale"):
                p.fill_(math.log(10.0))
            elif name.endswith(".weight") and ("norm" in name or "layrnorm" in name):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=generator))
            else:
                p.copy_(0.2 * torch.randn(p.shape, generator=generator))


def token_ids(spec: dict, vocab: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Tokenizer-shaped ids: BOS, random ids, EOS, right padding with EOS (as CLIP's pad token); mask covers BOS..EOS."""
    rows, masks = [], []
    for length in spec["lengths"]:
        body = torch.randint(spec["low"], vocab - 2 if spec["bos"] >= vocab - 2 else vocab, (length - 2,), generator=generator)
        row = [spec["bos"], *body.tolist(), spec["eos"]]
        masks.append([1] * len(row) + [0] * (spec["pad_to"] - len(row)))
        rows.append(row + [spec["eos"]] * (spec["pad_to"] - len(row)))
    return torch.tensor(rows, dtype=torch.long), torch.tensor(masks, dtype=torch.long)


def logits_size(config: CLIPSegConfig, size: int) -> int:
    """The refined head upsamples by (patch/4)^2, which equals the patch size only for patch 16."""
    patch = config.vision_config.patch_size
    grid = size // patch
    return grid * (patch // 4) ** 2 if config.use_complex_transposed_convolution else grid * patch


def flatten(prefix: str, output, keep_attentions: bool) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for field in ("last_hidden_state", "pooler_output"):
        value = getattr(output, field, None)
        if value is not None:
            out[f"{prefix}{field}"] = value
    for i, h in enumerate(getattr(output, "hidden_states", None) or ()):
        out[f"{prefix}hidden_states.{i}"] = h
    if keep_attentions:
        for i, a in enumerate(getattr(output, "attentions", None) or ()):
            out[f"{prefix}attentions.{i}"] = a
    return out


def segmentation_outputs(model, inputs: dict, keep_attentions: bool, repeat: int = 1) -> dict[str, torch.Tensor]:
    """One forward plus backward of CLIPSegForImageSegmentation, flattened to HF field names."""
    model.zero_grad(set_to_none=True)
    kwargs = dict(inputs)
    if repeat > 1:
        kwargs["pixel_values"] = kwargs["pixel_values"].expand(repeat, -1, -1, -1).contiguous()
    out = model(**kwargs, output_hidden_states=True, output_attentions=keep_attentions, return_dict=True)
    out.loss.backward()
    result = {
        "logits": out.logits,
        "conditional_embeddings": out.conditional_embeddings,
        "loss": out.loss,
    }
    if repeat == 1:
        result["pooled_output"] = out.pooled_output
        result.update(flatten("vision_model_output.", out.vision_model_output, keep_attentions))
    for i, h in enumerate(out.decoder_output.hidden_states):
        result[f"decoder_output.hidden_states.{i}"] = h
    if keep_attentions:
        for i, a in enumerate(out.decoder_output.attentions):
            result[f"decoder_output.attentions.{i}"] = a
    for name, p in model.named_parameters():
        if p.grad is not None:
            result[f"grad.{name}"] = p.grad
    return result


def clip_outputs(clip: CLIPSegModel, inputs: dict, keep_attentions: bool) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        out = clip(
            input_ids=inputs["input_ids"], pixel_values=inputs["pixel_values"], attention_mask=inputs["attention_mask"],
            return_loss=True, output_hidden_states=True, output_attentions=keep_attentions, return_dict=True,
        )
        result = {
            "loss": out.loss,
            "logits_per_image": out.logits_per_image,
            "logits_per_text": out.logits_per_text,
            "text_embeds": out.text_embeds,
            "image_embeds": out.image_embeds,
            "text_features": clip.get_text_features(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]),
            "image_features": clip.get_image_features(pixel_values=inputs["pixel_values"]),
        }
        result.update(flatten("text_model_output.", out.text_model_output, keep_attentions))
        result.update(flatten("vision_model_output.", out.vision_model_output, keep_attentions))
    return result


def full_grads(model, inputs: dict) -> dict[str, torch.Tensor]:
    """The segmentation loss with CLIP inside the graph (HF's forward runs CLIP under no_grad), for full fine-tuning."""
    model.zero_grad(set_to_none=True)
    vision = model.clip.vision_model(pixel_values=inputs["pixel_values"], output_hidden_states=True)
    activations = [vision.hidden_states[i + 1] for i in model.config.extract_layers]
    conditional = model.clip.get_text_features(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
    logits = model.decoder(activations, conditional).logits
    loss = torch.nn.BCEWithLogitsLoss()(logits, inputs["labels"])
    loss.backward()
    result = {"loss": loss}
    for name, p in model.named_parameters():
        if p.grad is not None:
            result[f"grad.{name}"] = p.grad
    return result


def save(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    save_file({k: v.detach().clone().contiguous() for k, v in tensors.items()}, str(path))


def generate_case(case: dict) -> None:
    directory = ROOT / case["name"]
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    torch.manual_seed(case["seed"])
    generator = torch.Generator().manual_seed(case["seed"])
    config = CLIPSegConfig(**case["config"])
    model = CLIPSegForImageSegmentation(config).eval()
    randomize(model, generator)
    model.save_pretrained(directory, safe_serialization=True)

    b, size = case["batch"], case["size"]
    channels = config.vision_config.num_channels
    input_ids, attention_mask = token_ids(case["tokens"], config.text_config.vocab_size, generator)
    pixel_values = torch.randn((b, channels, size, size), generator=generator)
    out_size = logits_size(config, size)
    labels = (torch.rand((b, out_size, out_size), generator=generator) > 0.5).float()
    text_inputs = dict(pixel_values=pixel_values, input_ids=input_ids, attention_mask=attention_mask, labels=labels)
    keep = case["attentions"]
    save(directory / "inputs.safetensors", text_inputs)
    save(directory / "outputs.safetensors", segmentation_outputs(model, text_inputs, keep))
    save(directory / "outputs_clip.safetensors", clip_outputs(model.clip, text_inputs, keep))

    for mode in case["modes"]:
        if mode == "visual":
            visual = case["visual_size"]
            conditional_pixel_values = torch.randn((b, channels, visual, visual), generator=generator)
            inputs = dict(pixel_values=pixel_values, conditional_pixel_values=conditional_pixel_values, labels=labels)
            outputs = segmentation_outputs(model, inputs, keep)
        elif mode == "embeds":
            conditional_embeddings = torch.randn((b, config.projection_dim), generator=generator)
            inputs = dict(pixel_values=pixel_values, conditional_embeddings=conditional_embeddings, labels=labels)
            outputs = segmentation_outputs(model, inputs, keep)
        elif mode == "broadcast":
            # One image and three prompts; HF needs the image repeated, the port runs the vision tower once.
            ids, mask = token_ids(dict(case["tokens"], lengths=[5, 3, 8]), config.text_config.vocab_size, generator)
            labels3 = (torch.rand((3, out_size, out_size), generator=generator) > 0.5).float()
            inputs = dict(pixel_values=pixel_values[:1], input_ids=ids, attention_mask=mask, labels=labels3)
            outputs = segmentation_outputs(model, inputs, keep, repeat=3)
        else:
            raise ValueError(mode)
        save(directory / f"inputs_{mode}.safetensors", inputs)
        save(directory / f"outputs_{mode}.safetensors", outputs)

    if case["full_grads"]:
        save(directory / "outputs_full_grads.safetensors", full_grads(model, text_inputs))


def generate_bicubic() -> None:
    generator = torch.Generator().manual_seed(5)
    tensors: dict[str, torch.Tensor] = {}
    for name, (h, w, c, oh, ow) in {
        "14x14_to_22x22": (14, 14, 6, 22, 22),
        "7x7_to_13x13": (7, 7, 3, 13, 13),
        "14x14_to_4x4": (14, 14, 2, 4, 4),
        "4x4_to_6x3": (4, 4, 2, 6, 3),
        "2x2_to_5x5": (2, 2, 1, 5, 5),
    }.items():
        grid = torch.randn((1, c, h, w), generator=generator)
        resized = torch.nn.functional.interpolate(grid, size=(oh, ow), mode="bicubic", align_corners=False)
        # Stored channels-last: [H, W, C], as the port keeps position tables.
        tensors[f"{name}.input"] = grid[0].permute(1, 2, 0)
        tensors[f"{name}.output"] = resized[0].permute(1, 2, 0)
    save(ROOT / "bicubic.safetensors", tensors)


def generate_configs() -> None:
    """Effective fields of a few config.json shapes, including the legacy *_config_dict overlay."""
    variants = {
        "empty": {},
        "overrides": dict(projection_dim=64, extract_layers=[1, 2], reduce_dim=16,
                          text_config=dict(vocab_size=100, eos_token_id=2), vision_config=dict(patch_size=16)),
        "dict_overlay": dict(text_config=dict(vocab_size=100, hidden_size=32, num_attention_heads=4),
                             text_config_dict=dict(hidden_size=8, num_attention_heads=2, eos_token_id=2),
                             vision_config=dict(patch_size=16, legacy_key="kept"),
                             vision_config_dict=dict(hidden_size=64, num_attention_heads=4)),
        "dict_only": dict(vision_config_dict=dict(patch_size=16, image_size=352)),
    }
    text_keys = ["vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                 "max_position_embeddings", "hidden_act", "layer_norm_eps", "bos_token_id", "eos_token_id", "pad_token_id"]
    vision_keys = ["hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_channels",
                   "image_size", "patch_size", "hidden_act", "layer_norm_eps"]
    top_keys = ["projection_dim", "logit_scale_init_value", "extract_layers", "reduce_dim", "decoder_num_attention_heads",
                "decoder_intermediate_size", "conditional_layer", "use_complex_transposed_convolution"]
    result = {}
    for name, values in variants.items():
        config = CLIPSegConfig(**json.loads(json.dumps(values)))
        result[name] = {
            "input": values,
            "effective": {
                **{k: getattr(config, k) for k in top_keys},
                "text_config": {k: getattr(config.text_config, k) for k in text_keys},
                "vision_config": {k: getattr(config.vision_config, k) for k in vision_keys},
            },
        }
    (ROOT / "configs.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")


def generate_dtypes() -> None:
    """One tensor per dtype (special values included) and the float64 values each must read back as."""
    f16_source = torch.tensor([0.1, 1 / 3, 65504.0, 65520.0, 1e-8, 2.0**-25, 3 * 2.0**-25, -0.0, 6e-5, 1e5, -2.5])
    bf16_source = torch.tensor([0.1, 1 / 3, -3e38, 1e-40, 1.00390625, 1.01171875, float("inf")])
    tensors = {
        "f32": torch.tensor([[0.1, -2.5, 3.4e38], [1e-45, -0.0, float("inf")]], dtype=torch.float32),
        "f32_nan": torch.tensor([float("nan")], dtype=torch.float32),
        "f16": f16_source.half(),
        "f16.input": f16_source,
        "bf16": bf16_source.bfloat16(),
        "f64": torch.tensor([1 / 3, 1e300, -2.5], dtype=torch.float64),
        "i64": torch.tensor([[-3, 0], [2**31 - 1, 49407]], dtype=torch.int64),
        "i64_big": torch.tensor([2**40], dtype=torch.int64),
        "i32": torch.tensor([-(2**31), 5], dtype=torch.int32),
        "u8": torch.tensor([0, 255, 7], dtype=torch.uint8),
        "bool": torch.tensor([True, False, True]),
        "scalar": torch.tensor(2.5, dtype=torch.float32),
        "empty": torch.zeros((0, 3), dtype=torch.float32),
    }
    expected = {f"{k}.expected": v.to(torch.float64).clone() for k, v in tensors.items() if k not in ("f16.input", "f32_nan", "i64_big")}
    save_file({**tensors, **expected}, str(ROOT / "dtypes.safetensors"), metadata={"format": "pt", "note": "unicode \u2713"})


def main() -> None:
    ROOT.mkdir(parents=True, exist_ok=True)
    for case in CASES:
        generate_case(case)
    generate_bicubic()
    generate_configs()
    generate_dtypes()


if __name__ == "__main__":
    main()
