"""Checkpoint fixtures for the weights converter and the safe PyTorch reader, written with torch and transformers.

Run: /work/.refvenv/bin/python tools/reference/gen_checkpoints.py

Writes test/fixtures/checkpoints/:
  hf/plain/            save_pretrained(safe_serialization=True) of a tiny random CLIPSegForImageSegmentation,
                       preprocessor_config.json, inputs.safetensors and outputs.safetensors (HF logits,
                       conditional_embeddings, pooled_output for those inputs)
  hf/plain-bin/        the same weights as pytorch_model.bin (torch.save zip format) plus tiny tokenizer files
  hf/plain-legacy/     the same weights as pytorch_model.bin in the legacy (pre-1.6, non-zip) format
  hf/plain-sharded/    the same weights as sharded safetensors with model.safetensors.index.json
  hf/plain-fp16/       the same weights in float16, outputs computed from the float16 values
  hf/refined/          a refined-head (use_complex_transposed_convolution) model, safetensors
  hf/mismatched/       a config.json whose reduce_dim disagrees with hf/plain's weights
  original/            the paper's release format at tiny sizes: clip-tiny.pt (TorchScript, OpenAI CLIP parameter
                       names), rd8-uni.pth / rd8-uni-refined.pth (decoder-only state dicts, original key names),
                       clip_plus_rd8-uni.pth (one file with clip_model.* and model.* keys, as transformers'
                       conversion script expects), overrides.json (config fields the weights cannot tell) and
                       expected-plain/, expected-refined/ (the HF models they convert to, with inputs/outputs)
  torch/               variety.pt (zip, protocol 2), variety_p4.pt (protocol 4), variety_legacy.pt: shared storages,
                       storage offsets, non-contiguous views, bf16/f16/f64/i64/i32/u8/bool, a scalar, a nested dict;
                       variety.safetensors holds the expected contiguous values; script.pt is a torch.jit.save archive
  malicious/           pickles that name posix.system / builtins.eval, in a torch zip, a legacy stream and raw
  processor_files.json SHA-256 and size of vocab.json / merges.txt as CLIPTokenizer.save_vocabulary writes the CLIP vocabulary

Every file is byte-for-byte reproducible from any checkout path; the two TorchScript archives go through
`save_torchscript`, which removes what torch.jit.save makes random or path-dependent.

The installed transformers wheel does not ship convert_clipseg_original_pytorch_to_hf.py, so `convert_original`
below restates its rules (renames, in_proj split into q/k/v, transposed projections, dropped `reduce.*` and
`model.*` keys) with the current `clip.` prefix in place of the script's stale `clipseg.`. The generator proves them:
the tiny original model, run with its own forward, and the converted HF model must give the same logits.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import pickle
import shutil
import struct
import zipfile
import zlib
from collections import OrderedDict
from pathlib import Path
from typing import NamedTuple

import torch
from safetensors.torch import save_file
from torch import nn
from transformers import CLIPSegConfig, CLIPSegForImageSegmentation, CLIPTokenizer, ViTImageProcessor

ROOT = Path(__file__).resolve().parents[2] / "test" / "fixtures" / "checkpoints"

torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)

TINY = dict(
    text_config=dict(vocab_size=100, hidden_size=16, intermediate_size=24, num_hidden_layers=2, num_attention_heads=2,
                     max_position_embeddings=12, bos_token_id=98, eos_token_id=99),
    vision_config=dict(hidden_size=16, intermediate_size=24, num_hidden_layers=4, num_attention_heads=2, image_size=16,
                       patch_size=8),
    projection_dim=12, extract_layers=[1, 2, 3], reduce_dim=8, decoder_num_attention_heads=2,
    decoder_intermediate_size=20,
)
INPUT_SIZE = 24  # a 3x3 patch grid against the 2x2 position table: the bicubic interpolation path runs
MARKER = "/tmp/clipseg-fixture-payload-ran"


def save(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    save_file({k: v.detach().clone().contiguous() for k, v in tensors.items()}, str(path))


def randomize(model: nn.Module, generator: torch.Generator) -> None:
    """Wider than the default init so that a misplaced weight changes the logits visibly."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("logit_scale"):
                p.fill_(math.log(10.0))
            elif p.ndim == 1 and ("norm" in name or "layrnorm" in name or "ln_" in name) and name.endswith("weight"):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=generator))
            else:
                p.copy_(0.2 * torch.randn(p.shape, generator=generator))


def make_inputs(config: CLIPSegConfig, size: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Tokenizer-shaped ids (BOS, body, EOS, EOS padding) and random pixel values."""
    text = config.text_config
    rows, masks = [], []
    for length in (6, 4):
        body = torch.randint(3, text.vocab_size - 2, (length - 2,), generator=generator).tolist()
        row = [text.bos_token_id, *body, text.eos_token_id]
        masks.append([1] * len(row) + [0] * (6 - len(row)))
        rows.append(row + [text.eos_token_id] * (6 - len(row)))
    return dict(
        pixel_values=torch.randn((2, 3, size, size), generator=generator),
        input_ids=torch.tensor(rows, dtype=torch.long),
        attention_mask=torch.tensor(masks, dtype=torch.long),
    )


def hf_outputs(model: CLIPSegForImageSegmentation, inputs: dict) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        out = model(**inputs, return_dict=True)
    return dict(logits=out.logits, conditional_embeddings=out.conditional_embeddings, pooled_output=out.pooled_output)


def write_case(directory: Path, model: CLIPSegForImageSegmentation, inputs: dict) -> None:
    save(directory / "inputs.safetensors", inputs)
    save(directory / "outputs.safetensors", hf_outputs(model, inputs))


LEGACY_ELEMENT_SIZE = dict(FloatStorage=4, HalfStorage=2, BFloat16Storage=2, DoubleStorage=8, LongStorage=8, IntStorage=4,
                           ByteStorage=1, BoolStorage=1)


def save_legacy(obj: object, path: Path) -> None:
    """torch.save's legacy (non-zip) format, made reproducible: torch names storages by memory address and writes them
    sorted by that name, so the names are replaced with first-use counters and the storages re-sorted to match.
    The result must load back to the same tensors."""
    buffer = io.BytesIO()
    torch.save(obj, buffer, _use_new_zipfile_serialization=False)
    data = buffer.getvalue()
    stream = io.BytesIO(data)
    for _ in range(3):  # magic number, protocol version, system info
        pickle.load(stream)
    header_end = stream.tell()
    used: dict[str, str] = {}

    class KeyCollector(pickle.Unpickler):
        """Reads our own just-written object only to learn the storage keys and types; builds nothing real."""

        def persistent_load(self, pid):
            used.setdefault(pid[2], pid[1].__name__)

        def find_class(self, module, name):
            return type(name, (Placeholder,), {})

    KeyCollector(stream).load()
    main = data[header_end:stream.tell()]
    keys = pickle.load(stream)
    blocks = {}
    position = stream.tell()
    for key in keys:
        (count,) = struct.unpack("<q", data[position:position + 8])
        size = 8 + count * LEGACY_ELEMENT_SIZE[used[key]]
        blocks[key] = data[position:position + size]
        position += size
    assert position == len(data)
    renamed = {key: str(index) for index, key in enumerate(used)}
    for key, new in renamed.items():
        main = main.replace(b"X" + struct.pack("<I", len(key)) + key.encode(), b"X" + struct.pack("<I", len(new)) + new.encode())
    order = sorted(renamed.values())
    by_new = {new: blocks[key] for key, new in renamed.items()}
    path.write_bytes(data[:header_end] + main + pickle.dumps(order, protocol=2) + b"".join(by_new[k] for k in order))
    check = torch.load(path, weights_only=False)
    flat_a, flat_b = flatten_tensors(obj), flatten_tensors(check)
    assert flat_a.keys() == flat_b.keys() and all(torch.equal(flat_a[k], flat_b[k]) for k in flat_a)


class Placeholder(dict):
    def __init__(self, *args, **kwargs):
        super().__init__()

    def __setstate__(self, state):
        pass


def flatten_tensors(obj: object, prefix: str = "") -> dict[str, torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        return {prefix: obj}
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            out.update(flatten_tensors(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {}


class Record(NamedTuple):
    """One zip entry as torch's writer lays it out: `raw` is the data as stored (deflated for `code/` sources)."""

    name: str
    method: int
    crc: int
    size: int
    raw: bytes


TORCH_ALIGNMENT = 64


def torch_records(archive: bytes) -> list[Record]:
    with zipfile.ZipFile(io.BytesIO(archive)) as z:
        infos = z.infolist()
        assert [i.header_offset for i in infos] == sorted(i.header_offset for i in infos), "central order != file order"
        records = []
        for info in infos:
            h = info.header_offset
            name_length, extra_length = struct.unpack("<HH", archive[h + 26:h + 30])
            start = h + 30 + name_length + extra_length
            records.append(Record(info.filename, info.compress_type, info.CRC, info.file_size,
                                  archive[start:start + info.compress_size]))
        return records


def torch_archive(records: list[Record]) -> bytes:
    """The bytes torch's PyTorchStreamWriter (miniz) writes for these records: zero timestamps, sizes in a data
    descriptor after each non-empty record, an `FB` extra field padded with `Z` so that every record's data starts at
    a multiple of 64, and zip64 end records. Small archives only (no zip64 per-entry fields)."""
    out, central = bytearray(), bytearray()
    for r in records:
        assert len(r.raw) < 0xFFFFFFFF and len(out) < 0xFFFFFFFF
        offset = len(out)
        name = r.name.encode()
        flags = 0x0808 if r.raw else 0x0800  # UTF-8 names; bit 3: crc and sizes follow the data
        version = 20 if r.method == zipfile.ZIP_DEFLATED else 0
        padding = -(offset + 30 + len(name) + 4) % TORCH_ALIGNMENT
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, version, flags, r.method, 0, 0, 0, 0, 0, len(name), 4 + padding)
        out += name + b"FB" + struct.pack("<H", padding) + b"Z" * padding + r.raw
        if r.raw:
            out += struct.pack("<IIII", 0x08074B50, r.crc, len(r.raw), r.size)
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 0, version, flags, r.method, 0, 0, r.crc, len(r.raw),
                               r.size, len(name), 0, 0, 0, 0, 0, offset) + name
    directory_offset, count = len(out), len(records)
    out += central
    record_offset = len(out)
    out += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 0x031E, 0x2D, 0, 0, count, count, len(central), directory_offset)
    out += struct.pack("<IIQI", 0x07064B50, 0, record_offset, 1)
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, len(central), directory_offset, 0)
    return bytes(out)


def save_torchscript(module: torch.jit.ScriptModule, path: Path, example: tuple[torch.Tensor, ...]) -> None:
    """torch.jit.save, reproducible from any checkout. torch writes a random `.data/serialization_id` and
    `code/**.py.debug_pkl` source maps holding this script's absolute path. The source maps (optional for
    torch.jit.load) are dropped and the id becomes a digest of the other records, in torch's own 40-digit form; every
    other record keeps its bytes, order and place in torch's layout."""
    buffer = io.BytesIO()
    torch.jit.save(module, buffer)
    written = buffer.getvalue()
    records = torch_records(written)
    assert torch_archive(records) == written, "torch's archive layout changed; torch_archive no longer matches it"
    kept = [r for r in records if not r.name.endswith(".debug_pkl")]
    digest = hashlib.sha256()
    with zipfile.ZipFile(io.BytesIO(written)) as z:
        for r in kept:
            if not r.name.endswith("/.data/serialization_id"):
                content = z.read(r.name)
                digest.update(struct.pack("<QQ", len(r.name), len(content)) + r.name.encode() + content)
    high, low = struct.unpack("<QQ", digest.digest()[:16])
    identifier = f"{high:020d}{low:020d}".encode()
    kept = [r._replace(method=zipfile.ZIP_STORED, crc=zlib.crc32(identifier), size=len(identifier), raw=identifier)
            if r.name.endswith("/.data/serialization_id") else r for r in kept]
    assert sum(r.name.endswith("/.data/serialization_id") for r in kept) == 1
    path.write_bytes(torch_archive(kept))
    loaded = torch.jit.load(str(path))
    expected, got = module.state_dict(), loaded.state_dict()
    assert expected.keys() == got.keys() and all(torch.equal(expected[k], got[k]) for k in expected)
    with torch.no_grad():
        want, have = module(*example), loaded(*example)
    want, have = (want, have) if isinstance(want, tuple) else ((want,), (have,))
    assert len(want) == len(have) and all(torch.equal(a, b) for a, b in zip(want, have))


def fresh(directory: Path) -> Path:
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    return directory


def image_processor(size: int) -> ViTImageProcessor:
    return ViTImageProcessor(size={"height": size, "width": size}, image_mean=[0.485, 0.456, 0.406],
                             image_std=[0.229, 0.224, 0.225], resample=2)


def tiny_tokenizer(directory: Path) -> None:
    """A small CLIP vocabulary (bytes, bytes + </w>, a few merges, the two specials) saved by CLIPTokenizer."""
    from transformers.models.clip.tokenization_clip import bytes_to_unicode

    chars = list(bytes_to_unicode().values())
    merges = ["c a", "ca t</w>", "d o", "do g</w>"]
    vocab = chars + [c + "</w>" for c in chars] + ["ca", "cat</w>", "do", "dog</w>", "<|startoftext|>", "<|endoftext|>"]
    tmp = directory / "_tok"
    tmp.mkdir()
    (tmp / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}))
    (tmp / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    CLIPTokenizer(str(tmp / "vocab.json"), str(tmp / "merges.txt"), pad_token="<|endoftext|>").save_pretrained(directory)
    shutil.rmtree(tmp)
    for extra in ("added_tokens.json", "tokenizer.json"):
        (directory / extra).unlink(missing_ok=True)


def generate_hf() -> None:
    generator = torch.Generator().manual_seed(11)
    torch.manual_seed(11)
    config = CLIPSegConfig(**TINY)
    model = CLIPSegForImageSegmentation(config).eval()
    randomize(model, generator)
    inputs = make_inputs(config, INPUT_SIZE, generator)
    state = model.state_dict()

    plain = fresh(ROOT / "hf" / "plain")
    model.save_pretrained(plain, safe_serialization=True)
    image_processor(INPUT_SIZE).save_pretrained(plain)
    write_case(plain, model, inputs)

    as_bin = fresh(ROOT / "hf" / "plain-bin")
    model.save_pretrained(as_bin, safe_serialization=False)
    image_processor(INPUT_SIZE).save_pretrained(as_bin)
    tiny_tokenizer(as_bin)

    legacy = fresh(ROOT / "hf" / "plain-legacy")
    config.save_pretrained(legacy)
    save_legacy(state, legacy / "pytorch_model.bin")

    sharded = fresh(ROOT / "hf" / "plain-sharded")
    model.save_pretrained(sharded, safe_serialization=True, max_shard_size="60KB")
    assert (sharded / "model.safetensors.index.json").exists(), "expected a sharded save"

    half = fresh(ROOT / "hf" / "plain-fp16")
    half_model = CLIPSegForImageSegmentation(config).eval()
    half_model.load_state_dict({k: v.half().float() for k, v in state.items()})
    half_model.half().save_pretrained(half, safe_serialization=True)
    write_case(half, half_model.float(), inputs)

    # Only the config: tests pair it with hf/plain's weights, whose reduce_dim (8) it contradicts.
    mismatched = fresh(ROOT / "hf" / "mismatched")
    CLIPSegConfig(**{**TINY, "reduce_dim": 4}).save_pretrained(mismatched)

    refined_config = CLIPSegConfig(**TINY, use_complex_transposed_convolution=True)
    torch.manual_seed(12)
    refined = CLIPSegForImageSegmentation(refined_config).eval()
    randomize(refined, generator)
    directory = fresh(ROOT / "hf" / "refined")
    refined.save_pretrained(directory, safe_serialization=True)
    write_case(directory, refined, inputs)


# ---- the paper's release format: OpenAI CLIP names for the backbone, nn.TransformerEncoderLayer decoder blocks ----


class QuickGELU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class ResidualAttentionBlock(nn.Module):
    def __init__(self, width: int, heads: int, attn_mask: torch.Tensor | None = None):
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads)
        self.ln_1 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(OrderedDict(c_fc=nn.Linear(width, 4 * width), gelu=QuickGELU(),
                                             c_proj=nn.Linear(4 * width, width)))
        self.ln_2 = nn.LayerNorm(width)
        self.attn_mask = attn_mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.ln_1(x)
        mask = None if self.attn_mask is None else self.attn_mask[: x.shape[0], : x.shape[0]]
        x = x + self.attn(h, h, h, need_weights=False, attn_mask=mask)[0]
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, width: int, layers: int, heads: int, attn_mask: torch.Tensor | None = None):
        super().__init__()
        self.resblocks = nn.Sequential(*[ResidualAttentionBlock(width, heads, attn_mask) for _ in range(layers)])


class VisionTransformer(nn.Module):
    def __init__(self, resolution: int, patch: int, width: int, layers: int, heads: int, output_dim: int):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, kernel_size=patch, stride=patch, bias=False)
        self.class_embedding = nn.Parameter(torch.zeros(width))
        self.positional_embedding = nn.Parameter(torch.zeros((resolution // patch) ** 2 + 1, width))
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = Transformer(width, layers, heads)
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Parameter(torch.zeros(width, output_dim))

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x).flatten(2).permute(0, 2, 1)
        cls = self.class_embedding + torch.zeros(x.shape[0], 1, x.shape[-1])
        x = torch.cat([cls, x], dim=1) + self.positional_embedding
        return self.ln_pre(x).permute(1, 0, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.transformer.resblocks(self.tokens(x)).permute(1, 0, 2)
        return self.ln_post(x[:, 0, :]) @ self.proj


class TinyCLIP(nn.Module):
    """OpenAI CLIP's module tree and parameter names (clip/model.py) at tiny sizes, heads fixed by hand."""

    def __init__(self, embed: int, resolution: int, patch: int, vision_width: int, vision_layers: int, context: int,
                 vocab: int, text_width: int, text_layers: int, heads: int):
        super().__init__()
        self.visual = VisionTransformer(resolution, patch, vision_width, vision_layers, heads, embed)
        mask = torch.full((context, context), float("-inf")).triu_(1)
        self.transformer = Transformer(text_width, text_layers, heads, mask)
        self.token_embedding = nn.Embedding(vocab, text_width)
        self.positional_embedding = nn.Parameter(torch.zeros(context, text_width))
        self.ln_final = nn.LayerNorm(text_width)
        self.text_projection = nn.Parameter(torch.zeros(text_width, embed))
        self.logit_scale = nn.Parameter(torch.zeros(()))
        # OpenAI's TorchScript files carry these as tensors; their state dicts list them next to the weights.
        self.register_buffer("input_resolution", torch.tensor(resolution))
        self.register_buffer("context_length", torch.tensor(context))
        self.register_buffer("vocab_size", torch.tensor(vocab))

    def encode_text(self, ids: torch.Tensor) -> torch.Tensor:
        x = (self.token_embedding(ids) + self.positional_embedding[: ids.shape[1]]).permute(1, 0, 2)
        x = self.ln_final(self.transformer.resblocks(x).permute(1, 0, 2))
        return x[torch.arange(x.shape[0]), ids.argmax(dim=-1)] @ self.text_projection

    def forward(self, image: torch.Tensor, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.visual(image), self.encode_text(ids)


class Decoder(nn.Module):
    """The decoder attributes of the paper's CLIPDensePredT (models/clipseg.py): film, reduces, blocks, trans_conv."""

    def __init__(self, reduce_dim: int, depth: int, heads: int, ff: int, width: int, embed: int, patch: int,
                 complex_trans_conv: bool):
        super().__init__()
        self.film_mul = nn.Linear(embed, reduce_dim)
        self.film_add = nn.Linear(embed, reduce_dim)
        self.reduce = nn.Linear(width, reduce_dim)  # unused by the forward, present in the released files
        if complex_trans_conv:
            k = patch // 4
            self.trans_conv = nn.Sequential(
                nn.Conv2d(reduce_dim, reduce_dim, kernel_size=3, padding=1), nn.ReLU(),
                nn.ConvTranspose2d(reduce_dim, reduce_dim // 2, kernel_size=k, stride=k), nn.ReLU(),
                nn.ConvTranspose2d(reduce_dim // 2, 1, kernel_size=k, stride=k))
        else:
            self.trans_conv = nn.ConvTranspose2d(reduce_dim, 1, patch, stride=patch)
        self.reduces = nn.ModuleList([nn.Linear(width, reduce_dim) for _ in range(depth)])
        self.blocks = nn.ModuleList(
            [nn.TransformerEncoderLayer(d_model=reduce_dim, nhead=heads, dim_feedforward=ff) for _ in range(depth)])


def original_forward(clip: TinyCLIP, decoder: Decoder, extract: list[int], image: torch.Tensor,
                     ids: torch.Tensor) -> torch.Tensor:
    """CLIPDensePredT.forward with cond_layer 0, at the native resolution (no position rescaling)."""
    cond = clip.encode_text(ids)
    x = clip.visual.tokens(image)
    activations = []
    for i, block in enumerate(clip.visual.transformer.resblocks):
        x = block(x)
        if i in extract:
            activations.append(x)
    a = None
    for i, (activation, block, reduce) in enumerate(zip(activations[::-1], decoder.blocks, decoder.reduces)):
        a = reduce(activation) if a is None else reduce(activation) + a
        if i == 0:
            a = decoder.film_mul(cond) * a + decoder.film_add(cond)
        a = block(a)
    a = a[1:].permute(1, 2, 0)
    size = int(math.sqrt(a.shape[2]))
    return decoder.trans_conv(a.reshape(image.shape[0], a.shape[1], size, size))[:, 0]


def rename_original(name: str) -> str:
    """The rename chain of transformers' rename_key, in its order, with `clip.` for the stale `clipseg.` prefix."""
    if "clip_model" in name:
        name = name.replace("clip_model", "clip")
    if "transformer" in name:
        name = name.replace("visual.transformer", "vision_model") if "visual" in name else name.replace("transformer", "text_model")
    for old, new in (("resblocks", "encoder.layers"), ("ln_1", "layer_norm1"), ("ln_2", "layer_norm2"),
                     ("c_fc", "fc1"), ("c_proj", "fc2")):
        name = name.replace(old, new)
    if "attn" in name and "self" not in name:
        name = name.replace("attn", "self_attn")
    if "token_embedding" in name:
        name = name.replace("token_embedding", "text_model.embeddings.token_embedding")
    if "positional_embedding" in name and "visual" not in name:
        name = name.replace("positional_embedding", "text_model.embeddings.position_embedding.weight")
    name = name.replace("ln_final", "text_model.final_layer_norm")
    name = name.replace("visual.class_embedding", "vision_model.embeddings.class_embedding")
    name = name.replace("visual.conv1", "vision_model.embeddings.patch_embedding")
    name = name.replace("visual.positional_embedding", "vision_model.embeddings.position_embedding.weight")
    name = name.replace("visual.ln_pre", "vision_model.pre_layrnorm")
    name = name.replace("visual.ln_post", "vision_model.post_layernorm")
    name = name.replace("visual.proj", "visual_projection.weight")
    name = name.replace("text_projection", "text_projection.weight")
    name = name.replace("trans_conv", "transposed_convolution")
    if any(k in name for k in ("film_mul", "film_add", "reduce", "transposed_convolution")):
        name = "decoder." + name
    for old, new in (("blocks", "decoder.layers"), ("linear1", "mlp.fc1"), ("linear2", "mlp.fc2")):
        name = name.replace(old, new)
    if "norm1" in name and "layer_" not in name:
        name = name.replace("norm1", "layer_norm1")
    if "norm2" in name and "layer_" not in name:
        name = name.replace("norm2", "layer_norm2")
    return name


def convert_original(state: dict[str, torch.Tensor], config: CLIPSegConfig) -> dict[str, torch.Tensor]:
    """transformers' convert_state_dict: split in_proj into q/k/v, transpose the two projections, rename the rest."""
    out = {}
    for key, value in state.items():
        if key.startswith("clip_model") and "attn.in_proj" in key:
            parts = key.split(".")
            visual = "visual" in key
            layer = int(parts[4] if visual else parts[3])
            dim = config.vision_config.hidden_size if visual else config.text_config.hidden_size
            prefix = f"clip.{'vision_model' if visual else 'text_model'}.encoder.layers.{layer}.self_attn"
        elif "self_attn" in key and "out_proj" not in key:
            layer = int(key.split(".")[1])
            dim = config.reduce_dim
            prefix = f"decoder.layers.{layer}.self_attn"
        else:
            name = rename_original(key)
            out[name] = value.T if ("visual_projection" in name or "text_projection" in name) else value
            continue
        kind = "weight" if key.endswith("weight") else "bias"
        out[f"{prefix}.q_proj.{kind}"] = value[:dim]
        out[f"{prefix}.k_proj.{kind}"] = value[dim: 2 * dim]
        out[f"{prefix}.v_proj.{kind}"] = value[-dim:]
    return out


def generate_original() -> None:
    directory = fresh(ROOT / "original")
    generator = torch.Generator().manual_seed(21)
    torch.manual_seed(21)
    width, text_width, embed, patch, resolution, reduce_dim, heads = 16, 16, 12, 8, 16, 8, 2
    extract = [1, 2, 3]
    clip = TinyCLIP(embed, resolution, patch, width, 4, 12, 100, text_width, 2, heads).eval()
    randomize(clip, generator)
    example = (torch.randn(1, 3, resolution, resolution), torch.tensor([[98, 5, 99]]))
    save_torchscript(torch.jit.trace(clip, example), directory / "clip-tiny.pt", example)
    clip_state = torch.jit.load(str(directory / "clip-tiny.pt")).state_dict()

    overrides = dict(text_config=dict(num_attention_heads=heads, bos_token_id=98, eos_token_id=99),
                     vision_config=dict(num_attention_heads=heads), extract_layers=extract,
                     decoder_num_attention_heads=2)
    (directory / "overrides.json").write_text(json.dumps(overrides, indent=2) + "\n")

    generator_inputs = torch.Generator().manual_seed(22)
    for variant, complex_head in (("plain", False), ("refined", True)):
        decoder = Decoder(reduce_dim, len(extract), 2, 20, width, embed, patch, complex_head).eval()
        randomize(decoder, generator)
        decoder_state = decoder.state_dict()
        name = "rd8-uni-refined.pth" if complex_head else "rd8-uni.pth"
        torch.save(decoder_state, directory / name)

        config = CLIPSegConfig(
            text_config=dict(vocab_size=100, hidden_size=text_width, intermediate_size=4 * text_width,
                             num_hidden_layers=2, num_attention_heads=heads, max_position_embeddings=12,
                             bos_token_id=98, eos_token_id=99),
            vision_config=dict(hidden_size=width, intermediate_size=4 * width, num_hidden_layers=4,
                               num_attention_heads=heads, image_size=resolution, patch_size=patch),
            projection_dim=embed, extract_layers=extract, reduce_dim=reduce_dim, decoder_num_attention_heads=2,
            decoder_intermediate_size=20, use_complex_transposed_convolution=complex_head,
        )
        combined = {**{f"clip_model.{k}": v for k, v in clip_state.items()},
                    **{f"model.{k[len('visual.'):]}": v for k, v in clip_state.items() if k.startswith("visual.")},
                    **decoder_state}
        if not complex_head:
            torch.save(combined, directory / "clip_plus_rd8-uni.pth")
        converted = convert_original(
            {k: v for k, v in combined.items() if not k.startswith("model")}, config)
        for dropped in ("clip.input_resolution", "clip.context_length", "clip.vocab_size"):
            converted.pop(dropped)
        hf = CLIPSegForImageSegmentation(config).eval()
        missing, unexpected = hf.load_state_dict(converted, strict=False)
        assert missing == [], missing
        assert unexpected == ["decoder.reduce.weight", "decoder.reduce.bias"], unexpected

        # The restated rules are right only if both models compute the same thing.
        image = torch.randn((2, 3, resolution, resolution), generator=generator_inputs)
        ids = torch.tensor([[98, 7, 30, 99, 99], [98, 44, 12, 61, 99]])
        with torch.no_grad():
            expected = original_forward(clip, decoder, extract, image, ids)
            got = hf(pixel_values=image, input_ids=ids).logits
        assert torch.allclose(expected, got, atol=1e-5), (expected - got).abs().max()

        out = fresh(directory / f"expected-{variant}")
        hf.save_pretrained(out, safe_serialization=True)
        write_case(out, hf, make_inputs(config, INPUT_SIZE, generator_inputs))


# ---- the reader's own cases ----


def variety() -> tuple[dict, dict[str, torch.Tensor]]:
    """Tensors that exercise storages shared between tensors, offsets, strides and dtypes."""
    generator = torch.Generator().manual_seed(31)
    base = torch.randn((4, 6), generator=generator)
    wide = torch.randn(10, generator=generator, dtype=torch.float64)
    obj = OrderedDict(
        matrix=base,
        transposed=base.t(),
        row=base[2],
        column=base[:, 3],
        strided=base[1:, ::2],
        half=torch.randn((3, 2), generator=generator).half(),
        bfloat=torch.randn(5, generator=generator).bfloat16(),
        double=wide[3:7],
        long=torch.tensor([[-3, 2**40], [7, 0]], dtype=torch.long),
        int=torch.tensor([1, -2, 3], dtype=torch.int32),
        byte=torch.tensor([0, 255, 9], dtype=torch.uint8),
        flag=torch.tensor([True, False, True]),
        scalar=torch.tensor(2.5),
        empty=torch.zeros((0, 3)),
        param=nn.Parameter(torch.randn(2, generator=generator)),
    )
    nested = {"state": obj, "step": 7, "name": "variety", "extra": {"inner": torch.arange(4, dtype=torch.float32)}}
    flat = {f"state.{k}": v.detach() for k, v in obj.items()}
    flat["extra.inner"] = nested["extra"]["inner"]
    return nested, flat


class Scripted(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 2)
        self.blocks = nn.ModuleList([nn.LayerNorm(2), nn.LayerNorm(2)])
        self.scale = nn.Parameter(torch.tensor(0.5))
        self.register_buffer("steps", torch.tensor([1, 2, 3]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.linear(x) * self.scale
        for block in self.blocks:
            x = block(x)
        return x


def generate_torch() -> None:
    directory = fresh(ROOT / "torch")
    nested, flat = variety()
    torch.save(nested, directory / "variety.pt")
    torch.save(nested, directory / "variety_p4.pt", pickle_protocol=4)
    save_legacy(nested, directory / "variety_legacy.pt")
    save(directory / "variety.safetensors", flat)
    torch.manual_seed(32)
    module = Scripted().eval()
    example = (torch.randn(1, 3),)
    save_torchscript(torch.jit.trace(module, example), directory / "script.pt", example)
    save(directory / "script.safetensors", dict(module.state_dict()))


def malicious_pickle(module: str, name: str, protocol: int = 2) -> bytes:
    """Hand-assembled opcodes: PROTO, the global, a one-string tuple and REDUCE, i.e. `module.name(command)`."""
    command = f"touch {MARKER}".encode()
    if protocol >= 4:
        head = b"\x80\x04" + b"\x8c" + bytes([len(module)]) + module.encode() + b"\x8c" + bytes([len(name)]) + name.encode() + b"\x93"
    else:
        head = b"\x80\x02" + b"c" + module.encode() + b"\n" + name.encode() + b"\n"
    return head + b"X" + struct.pack("<I", len(command)) + command + b"\x85" + b"R" + b"."


def torch_zip(path: Path, data_pkl: bytes) -> None:
    """A torch.save-shaped archive (archive/data.pkl, version, byteorder), entries stored uncompressed."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        for name, content in (("archive/data.pkl", data_pkl), ("archive/byteorder", b"little"), ("archive/version", b"3\n")):
            z.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), content)


def generate_malicious() -> None:
    directory = fresh(ROOT / "malicious")
    (directory / "posix_system.pkl").write_bytes(malicious_pickle("posix", "system"))
    (directory / "builtins_eval_p4.pkl").write_bytes(malicious_pickle("builtins", "eval", protocol=4))
    torch_zip(directory / "posix_system.pt", malicious_pickle("posix", "system"))
    legacy = io.BytesIO()
    for value in (0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True}):
        pickle.dump(value, legacy, protocol=2)
    legacy.write(malicious_pickle("posix", "system"))
    (directory / "posix_system_legacy.pt").write_bytes(legacy.getvalue())


def generate_processor_digests() -> None:
    """SHA-256 of vocab.json and merges.txt as transformers' CLIPTokenizer.save_vocabulary writes them for the CLIP
    vocabulary (rebuilt from assets/clip/bpe_simple_vocab_16e6.txt.gz by gen_tokenizer.build_hf_files)."""
    import sys
    import tempfile

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from gen_tokenizer import build_hf_files

    with tempfile.TemporaryDirectory() as work:
        raw, saved = Path(work) / "raw", Path(work) / "saved"
        raw.mkdir()
        saved.mkdir()
        build_hf_files(str(raw))
        CLIPTokenizer(str(raw / "vocab.json"), str(raw / "merges.txt")).save_vocabulary(str(saved))
        digests = {name: {"sha256": hashlib.sha256((saved / name).read_bytes()).hexdigest(), "bytes": (saved / name).stat().st_size}
                   for name in ("vocab.json", "merges.txt")}
    (ROOT / "processor_files.json").write_text(json.dumps(digests, indent=2) + "\n")


def main() -> None:
    ROOT.mkdir(parents=True, exist_ok=True)
    generate_processor_digests()
    generate_hf()
    generate_original()
    generate_torch()
    generate_malicious()


if __name__ == "__main__":
    main()
