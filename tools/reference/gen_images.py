"""Reference fixtures for the image side of the processor, post-processing and visual prompts, and the example
photos in assets/examples.

Writes test/fixtures/images/: small test photographs cut from scikit-image's bundled sample data (public domain /
CC0, see SOURCES.md there), the `pixel_values` Hugging Face's ViTImageProcessor (slow PIL path) produces for them,
Pillow resize outputs, EXIF-orientation outputs of `transformers.image_utils.load_image`, torch bilinear
interpolation of probability maps and the original CLIPSeg visual-prompt recipe (`crop_blur_highlight352`).

Run with the reference venv:  /work/.refvenv/bin/python tools/reference/gen_images.py
The colour-map tables (colormaps.json) need matplotlib; when it is not importable that file is left as it is.
Everything is seeded and deterministic.
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import PIL
import skimage
import skimage.data
import torch
import torch.nn.functional as F
import transformers
from PIL import Image
from safetensors.numpy import save_file
from transformers import ViTImageProcessor
from transformers.image_utils import load_image

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "test" / "fixtures" / "images"

MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]
# One metadata key: safetensors writes several keys in an unstable order, which would churn the files.
VERSIONS = {
    "versions": json.dumps(
        {
            "numpy": np.__version__,
            "pillow": PIL.__version__,
            "scikit-image": skimage.__version__,
            "torch": torch.__version__,
            "transformers": transformers.__version__,
        }
    )
}


def processor(height: int, width: int) -> ViTImageProcessor:
    # The CIDAS/clipseg-* preprocessor_config.json values, with the target size as the only variable.
    return ViTImageProcessor(
        do_resize=True,
        size={"height": height, "width": width},
        resample=2,
        do_rescale=True,
        rescale_factor=1 / 255,
        do_normalize=True,
        image_mean=MEAN,
        image_std=STD,
    )


def hf_pixel_values(path: Path, height: int, width: int) -> np.ndarray:
    image = load_image(str(path)).convert("RGB")
    out = processor(height, width)(images=image, return_tensors="np")
    return out["pixel_values"][0].astype(np.float32)


def write_inputs() -> dict[str, Path]:
    """Cuts the test photographs; returns name -> file."""
    files: dict[str, Path] = {}

    def save(name: str, image: Image.Image, **kwargs) -> None:
        path = OUT / name
        image.save(path, **kwargs)
        files[name] = path

    astronaut = Image.fromarray(skimage.data.astronaut())
    coffee = Image.fromarray(skimage.data.coffee())
    chelsea = Image.fromarray(skimage.data.chelsea())
    camera = Image.fromarray(skimage.data.camera())
    rocket = Image.fromarray(skimage.data.rocket())

    # Downscale on both axes to the real 352x352 target.
    save("astronaut_400x380.png", astronaut.crop((60, 0, 460, 380)))
    # Upscale on both axes (small target sizes keep the pixel_values fixtures small).
    save("chelsea_90x60.png", chelsea.crop((150, 40, 330, 160)).resize((90, 60), Image.Resampling.BOX))
    # Greyscale (mode L), downscaled.
    save("camera_grey_150x130.png", camera.crop((150, 40, 450, 300)).resize((150, 130), Image.Resampling.BOX))
    # RGBA with a varying alpha: processed as RGB with alpha dropped; the target keeps the width (vertical pass only).
    rgba = np.array(rocket.crop((200, 60, 380, 180)).resize((120, 80), Image.Resampling.BOX))
    alpha = np.tile(np.linspace(0, 255, 120).astype(np.uint8), (80, 1))
    save("rocket_rgba_120x80.png", Image.fromarray(np.dstack([rgba, alpha]), "RGBA"))
    # Only the width changes (horizontal pass only).
    save("coffee_160x100.png", coffee.crop((100, 50, 500, 300)).resize((160, 100), Image.Resampling.BOX))
    # JPEGs: 4:4:4 (no chroma upsampling) and the common 4:2:0.
    save("coffee_q90_444.jpg", coffee.crop((80, 40, 520, 340)).resize((220, 150), Image.Resampling.BOX), quality=90, subsampling=0)
    save("chelsea_q85_420.jpg", chelsea.crop((60, 0, 420, 280)).resize((180, 140), Image.Resampling.BOX), quality=85, subsampling=2)
    return files


PROCESSOR_CASES = [
    # name, file, target height, target width
    ("astronaut_352", "astronaut_400x380.png", 352, 352),
    ("chelsea_up", "chelsea_90x60.png", 80, 100),
    ("camera_grey", "camera_grey_150x130.png", 56, 64),
    ("rocket_rgba_vertical_only", "rocket_rgba_120x80.png", 48, 120),
    ("coffee_horizontal_only", "coffee_160x100.png", 100, 64),
    ("coffee_jpeg_444", "coffee_q90_444.jpg", 64, 64),
    ("chelsea_jpeg_420", "chelsea_q85_420.jpg", 64, 64),
]


def write_processor_refs() -> None:
    tensors = {}
    cases = []
    for name, file, height, width in PROCESSOR_CASES:
        tensors[name] = hf_pixel_values(OUT / file, height, width)
        cases.append({"name": name, "file": file, "height": height, "width": width})
    # Every rescale+normalise result for each 8-bit value and channel, from HF's own functions.
    values = np.arange(256, dtype=np.uint8).reshape(256, 1, 1).repeat(3, axis=2)
    proc = processor(352, 352)
    rescaled = proc.rescale(values, 1 / 255, input_data_format="channels_last")
    normalised = proc.normalize(rescaled, MEAN, STD, input_data_format="channels_last")
    tensors["normalize_table"] = normalised[:, 0, :].T.astype(np.float32).copy()
    save_file(tensors, str(OUT / "processor.safetensors"), metadata=VERSIONS)
    (OUT / "processor_cases.json").write_text(json.dumps(cases, indent=1) + "\n")


RESIZE_CASES = [
    # source mode, output width, output height, filter
    ("RGB", 31, 20, "bilinear"),
    ("RGB", 160, 100, "bilinear"),
    ("RGB", 97, 23, "bilinear"),
    ("RGB", 29, 61, "bilinear"),
    ("RGB", 1, 1, "bilinear"),
    ("RGB", 13, 250, "bilinear"),
    ("L", 40, 90, "bilinear"),
    ("RGBA", 50, 37, "bilinear"),
    ("RGBA", 170, 100, "bilinear"),
    ("RGB", 70, 45, "bicubic"),
    ("RGB", 150, 110, "bicubic"),
    ("RGB", 44, 33, "lanczos"),
    ("RGB", 44, 33, "box"),
    ("RGB", 44, 33, "hamming"),
    ("RGB", 40, 25, "nearest"),
    ("RGB", 150, 110, "nearest"),
    ("RGB", 213, 131, "nearest"),
    ("L", 33, 70, "nearest"),
]

FILTERS = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
    "hamming": Image.Resampling.HAMMING,
}


def write_resize_refs() -> None:
    rng = np.random.default_rng(7)
    photo = np.array(Image.fromarray(skimage.data.chelsea()).crop((120, 30, 314, 152)).resize((97, 61), Image.Resampling.BOX))
    grey = np.array(Image.fromarray(photo).convert("L"))
    alpha = rng.integers(0, 256, size=photo.shape[:2], dtype=np.uint8)
    alpha[:, :10] = 0
    alpha[:, -10:] = 255
    rgba = np.dstack([photo, alpha])
    sources = {"RGB": photo, "L": grey, "RGBA": rgba}
    tensors = {f"source_{mode}": array for mode, array in sources.items()}
    cases = []
    for mode, width, height, name in RESIZE_CASES:
        key = f"{mode}_{width}x{height}_{name}"
        out = Image.fromarray(sources[mode], mode).resize((width, height), FILTERS[name])
        tensors[key] = np.array(out)
        cases.append({"key": key, "mode": mode, "width": width, "height": height, "filter": name})
    save_file(tensors, str(OUT / "resize.safetensors"), metadata=VERSIONS)
    (OUT / "resize_cases.json").write_text(json.dumps(cases, indent=1) + "\n")


def exif_bytes(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


def png_bytes(array: np.ndarray, bit_depth: int, color_type: int) -> bytes:
    """A minimal PNG writer, for 16-bit RGB which PIL cannot write."""
    height, width = array.shape[:2]
    raw = b"".join(b"\x00" + array[y].astype(">u2").tobytes() for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def write_decode_refs() -> None:
    """Small files in each container format plus EXIF orientations; references are load_image(...) as RGB."""
    base = Image.fromarray(skimage.data.astronaut()).crop((140, 40, 340, 200)).resize((40, 24), Image.Resampling.BOX)
    cases = []
    tensors = {}

    def add(file: str, exact: bool) -> None:
        tensors[file] = np.array(load_image(str(OUT / file)).convert("RGB"))
        cases.append({"file": file, "exact": exact})

    for k in range(1, 9):
        base.save(OUT / f"exif_{k}.png", exif=exif_bytes(k))
        add(f"exif_{k}.png", True)
        base.save(OUT / f"exif_{k}.jpg", exif=exif_bytes(k), quality=95, subsampling=0)
        add(f"exif_{k}.jpg", True)
    # 4:2:0 with sizes that are not multiples of the 16-pixel MCU, so the chroma upsampling meets the edges; progressive.
    base.resize((37, 23), Image.Resampling.BOX).save(OUT / "odd_420_progressive.jpg", quality=80, subsampling=2, progressive=True)
    add("odd_420_progressive.jpg", True)
    base.convert("L").save(OUT / "grey.jpg", quality=90)
    add("grey.jpg", True)
    # CMYK (Adobe, inverted) has no libjpeg conversion to RGB: decoded by the fallback decoder, within 2 levels.
    base.convert("CMYK").save(OUT / "cmyk.jpg", quality=95)
    add("cmyk.jpg", False)
    base.save(OUT / "exif_6.tif", tiffinfo={0x0112: 6})
    add("exif_6.tif", True)
    base.save(OUT / "plain.bmp")
    add("plain.bmp", True)
    base.save(OUT / "plain_lzw.tif", compression="tiff_lzw")
    add("plain_lzw.tif", True)
    base.quantize(64).save(OUT / "palette.gif")
    add("palette.gif", True)
    base.quantize(32).save(OUT / "palette.png")
    add("palette.png", True)
    base.convert("LA").save(OUT / "grey_alpha.png")
    add("grey_alpha.png", True)
    rng = np.random.default_rng(11)
    rgb16 = (np.array(base, dtype=np.uint16) * 257 + rng.integers(0, 257, size=(24, 40, 3))).astype(np.uint16)
    (OUT / "rgb16.png").write_bytes(png_bytes(rgb16, 16, 2))
    add("rgb16.png", True)
    # PIL opens 16-bit grey as "I;16" and its RGB conversion clips at 255 rather than scaling.
    grey16 = np.linspace(0, 600, 24 * 40).reshape(24, 40).astype(np.uint16)
    Image.fromarray(grey16).save(OUT / "grey16.png")
    add("grey16.png", True)
    save_file(tensors, str(OUT / "decode.safetensors"), metadata=VERSIONS)
    (OUT / "decode_cases.json").write_text(json.dumps(cases, indent=1) + "\n")


def tiff_bytes(
    array: np.ndarray,
    bits: int,
    photometric: int,
    extra: tuple[int, ...] = (),
    big_endian: bool = False,
    colormap: np.ndarray | None = None,
    rows_per_strip: int | None = None,
) -> bytes:
    """An uncompressed TIFF written field by field, for sample layouts Pillow does not write ([H, W, S] samples)."""
    order = ">" if big_endian else "<"
    height, width, samples = array.shape
    rows_per_strip = rows_per_strip or height
    if bits >= 8:
        rows = [array[y].astype(f"{order}u{bits // 8}").tobytes() for y in range(height)]
    else:
        # One sample per pixel, packed from the most significant bit, each row padded to a whole byte.
        rows = [np.packbits(np.unpackbits(array[y, :, 0].astype(np.uint8)[:, None], axis=1)[:, 8 - bits :].reshape(-1)).tobytes() for y in range(height)]
    strips = [b"".join(rows[y : y + rows_per_strip]) for y in range(0, height, rows_per_strip)]
    entries: list[tuple[int, int, list[int]]] = [
        (256, 4, [width]),
        (257, 4, [height]),
        (258, 3, [bits] * samples),
        (259, 3, [1]),
        (262, 3, [photometric]),
        (273, 4, [0] * len(strips)),
        (277, 3, [samples]),
        (278, 4, [rows_per_strip]),
        (279, 4, [len(strip) for strip in strips]),
    ]
    if colormap is not None:
        entries.append((320, 3, [int(v) for v in colormap.T.reshape(-1)]))
    if extra:
        entries.append((338, 3, list(extra)))
    data = bytearray(b"MM\0*" if big_endian else b"II*\0") + struct.pack(f"{order}I", 0)
    offsets = []
    for strip in strips:
        offsets.append(len(data))
        data += strip + b"\0" * (len(strip) & 1)
    entries[5] = (273, 4, offsets)
    ifd = len(data)
    values_at = ifd + 2 + 12 * len(entries) + 4
    table = bytearray(struct.pack(f"{order}H", len(entries)))
    values = bytearray()
    for tag, kind, items in entries:
        packed = struct.pack(f"{order}{len(items)}{'H' if kind == 3 else 'I'}", *items)
        if len(packed) <= 4:
            field = packed.ljust(4, b"\0")
        else:
            field = struct.pack(f"{order}I", values_at + len(values))
            values += packed
        table += struct.pack(f"{order}HHI", tag, kind, len(items)) + field
    data += table + struct.pack(f"{order}I", 0) + values
    data[4:8] = struct.pack(f"{order}I", ifd)
    return bytes(data)


def write_variant_refs() -> None:
    """TIFF sample layouts and compressions, and GIF variants, each with its load_image(...).convert("RGB")."""
    out = OUT / "variants"
    out.mkdir(exist_ok=True)
    base = Image.fromarray(skimage.data.astronaut()).crop((140, 40, 340, 200)).resize((40, 24), Image.Resampling.BOX)
    odd = base.crop((0, 0, 37, 24))
    rng = np.random.default_rng(5)
    tensors = {}
    cases = []

    def add(name: str) -> None:
        tensors[f"variants/{name}"] = np.array(load_image(str(out / name)).convert("RGB"))
        cases.append({"file": f"variants/{name}"})

    pillow_tiffs = [
        ("rgb_deflate.tif", base, {"compression": "tiff_adobe_deflate"}),
        ("rgb_packbits.tif", base, {"compression": "packbits"}),
        # Horizontal differencing (predictor 2) before LZW.
        ("rgb_lzw_predictor.tif", base, {"compression": "tiff_lzw", "tiffinfo": {317: 2}}),
        ("rgb_lzw_strips.tif", base, {"compression": "tiff_lzw", "strip_size": 1024}),
        ("rgba_lzw.tif", base.convert("RGBA"), {"compression": "tiff_lzw"}),
        ("la_deflate.tif", base.convert("LA"), {"compression": "tiff_deflate"}),
        ("grey_packbits.tif", base.convert("L"), {"compression": "packbits"}),
        ("palette_lzw.tif", base.quantize(32), {"compression": "tiff_lzw"}),
        ("palette_alpha.tif", base.quantize(32).convert("PA"), {}),
        ("bilevel.tif", odd.convert("1"), {}),
        ("cmyk_lzw.tif", base.convert("CMYK"), {"compression": "tiff_lzw"}),
        ("grey16_lzw_predictor.tif", Image.fromarray((np.array(base.convert("L"), dtype=np.uint16) * 3)), {"compression": "tiff_lzw", "tiffinfo": {317: 2}}),
        ("grey16_be.tif", Image.fromarray((np.array(base.convert("L"), dtype=np.uint16) * 2)).convert("I;16B"), {}),
    ]
    for name, image, options in pillow_tiffs:
        image.save(out / name, **options)
        add(name)
    rgb16 = np.array(base, dtype=np.uint16) * 257 + rng.integers(0, 257, size=(24, 40, 3)).astype(np.uint16)
    alpha16 = rng.integers(0, 65536, size=(24, 40, 1)).astype(np.uint16)
    grey = np.array(odd.convert("L"))[:, :, None]
    palette = rng.integers(0, 65536, size=(16, 3)).astype(np.uint16)
    written = [
        ("rgb16_be_strips.tif", tiff_bytes(rgb16, 16, 2, big_endian=True, rows_per_strip=10)),
        ("rgba16.tif", tiff_bytes(np.concatenate([rgb16, alpha16], axis=2), 16, 2, extra=(2,))),
        # The fourth sample is unspecified data, which PIL ignores.
        ("rgbx.tif", tiff_bytes(np.concatenate([np.array(base), rng.integers(0, 256, size=(24, 40, 1), dtype=np.uint8)], axis=2), 8, 2, extra=(0,))),
        ("grey4_white_is_zero.tif", tiff_bytes(grey >> 4, 4, 0, rows_per_strip=7)),
        ("grey2.tif", tiff_bytes(grey >> 6, 2, 1, big_endian=True)),
        ("palette4.tif", tiff_bytes(grey >> 4, 4, 3, colormap=palette)),
    ]
    for name, data in written:
        (out / name).write_bytes(data)
        add(name)
    base.quantize(16).save(out / "transparent.gif", transparency=3)
    add("transparent.gif")
    # An identity grey colour table: PIL reads the indices as grey levels.
    base.convert("L").save(out / "grey.gif")
    add("grey.gif")
    base.quantize(4).save(out / "four_colours.gif", interlace=False)
    add("four_colours.gif")
    save_file(tensors, str(OUT / "decode_variants.safetensors"), metadata=VERSIONS)
    (OUT / "decode_variants.json").write_text(json.dumps(cases, indent=1) + "\n")


def write_postprocess_refs() -> None:
    torch.manual_seed(0)
    logits = torch.randn(2, 44, 44) * 4
    probs = torch.sigmoid(logits)
    tensors = {"logits": logits.numpy(), "probs": probs.numpy()}
    for height, width in [(53, 71), (20, 30), (44, 100), (131, 97)]:
        resized = F.interpolate(probs[:, None], size=(height, width), mode="bilinear", align_corners=False)
        tensors[f"resized_{height}x{width}"] = resized[:, 0].numpy()
    save_file(tensors, str(OUT / "postprocess.safetensors"), metadata=VERSIONS)


def gaussian_blur_reflect101(image: np.ndarray, ksize: int = 15, sigma: float = 3.0) -> np.ndarray:
    """cv2.GaussianBlur(img HWC float32, (15, 15), 3) as the original repository calls it: float32 kernel from
    getGaussianKernel, BORDER_REFLECT_101, row pass then column pass with a float32 intermediate."""
    x = np.arange(ksize, dtype=np.float64) - (ksize - 1) * 0.5
    kernel = np.exp(-0.5 * x * x / (sigma * sigma))
    kernel = (kernel / kernel.sum()).astype(np.float32).astype(np.float64)
    half = ksize // 2

    def indices(n: int) -> np.ndarray:
        idx = np.arange(-half, n + half)
        while ((idx < 0) | (idx >= n)).any():
            idx = np.where(idx < 0, -idx, idx)
            idx = np.where(idx >= n, 2 * n - 2 - idx, idx)
        return idx

    def blur_axis(a: np.ndarray, axis: int) -> np.ndarray:
        n = a.shape[axis]
        padded = np.take(a.astype(np.float64), indices(n), axis=axis)
        out = np.zeros_like(a, dtype=np.float64)
        for t in range(ksize):
            out += kernel[t] * np.take(padded, np.arange(t, t + n), axis=axis)
        return out.astype(np.float32)

    return blur_axis(blur_axis(image, 1), 0)


def original_crop_mask(mask: torch.Tensor, context: float, fixed: bool) -> list[int]:
    """crop_mask from timojl/clipseg evaluation_utils.py. The original measures the x extent against mask.size(0)
    (the height) and the y extent against mask.size(1); that only matters for non-square masks, so `fixed`
    swaps in the intended axis for the non-square case."""
    h, w = mask.shape
    size_x, size_y = (w, h) if fixed else (h, w)
    bbox = [int(mask.max(0).values.argmax()), size_x - int(mask.max(0).values.flip(0).argmax())]
    bbox += [int(mask.max(1).values.argmax()), size_y - int(mask.max(1).values.flip(0).argmax())]
    width, height = bbox[3] - bbox[2], bbox[1] - bbox[0]
    bbox[0] = int(max(0, bbox[0] - context * height))
    bbox[1] = int(min(size_x, bbox[1] + context * height))
    bbox[2] = int(max(0, bbox[2] - context * width))
    bbox[3] = int(min(size_y, bbox[3] + context * width))
    return bbox


def original_visual_prompt(img: torch.Tensor, mask: torch.Tensor, image_size: int, fixed: bool) -> torch.Tensor:
    """img_preprocess(blur=3, center_context=0.1, bg_fac=0.1) followed by object_crop, in normalised space."""
    blurred = torch.from_numpy(gaussian_blur_reflect101(img.permute(1, 2, 0).numpy())).permute(2, 0, 1)
    blended = img * mask + 0.1 * blurred * (1 - mask)
    bbox = original_crop_mask(mask, 0.1, fixed)
    crop = blended[:, bbox[2] : bbox[3], bbox[0] : bbox[1]]
    h, w = crop.shape[1:]
    padx1 = padx2 = pady1 = pady2 = 0
    if h > w:
        padx1 = (h - w) // 2
        padx2 = h - w - padx1
    elif w > h:
        pady1 = (w - h) // 2
        pady2 = w - h - pady1
    padded = F.pad(crop, (padx1, padx2, pady1, pady2), mode="constant", value=0.0)
    return F.interpolate(padded.unsqueeze(0), (image_size, image_size)).squeeze(0)


def normalise(array: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(array.astype(np.float32) / 255.0).permute(2, 0, 1)
    return (x - torch.tensor(MEAN)[:, None, None]) / torch.tensor(STD)[:, None, None]


def write_visual_prompt_refs() -> None:
    chelsea = Image.fromarray(skimage.data.chelsea())
    tensors = {}
    for name, box, size, fixed in [("square", (100, 20, 340, 260), (96, 96), False), ("wide", (40, 30, 390, 280), (112, 80), True)]:
        array = np.array(chelsea.crop(box).resize(size, Image.Resampling.BOX))
        img = normalise(array)
        h, w = img.shape[1:]
        yy, xx = np.mgrid[0:h, 0:w]
        # An off-centre ellipse so that the crop, the padding and the clamping all matter.
        mask = ((((xx - 0.62 * w) / (0.22 * w)) ** 2 + ((yy - 0.45 * h) / (0.3 * h)) ** 2) <= 1).astype(np.float32)
        out = original_visual_prompt(img, torch.from_numpy(mask), 64, fixed)
        # safetensors writes an array's memory order: the permuted tensor must be made contiguous first.
        tensors[f"{name}/image"] = img.contiguous().numpy()
        tensors[f"{name}/mask"] = mask
        tensors[f"{name}/prompt"] = out.numpy()
        tensors[f"{name}/blurred"] = gaussian_blur_reflect101(img.permute(1, 2, 0).numpy()).transpose(2, 0, 1).copy()
    save_file(tensors, str(OUT / "visual_prompt.safetensors"), metadata=VERSIONS)


def write_colormaps() -> None:
    try:
        from matplotlib import colormaps
    except ImportError:
        print("matplotlib not importable: colormaps.json left as it is")
        return
    tables = {}
    for name in ("viridis", "inferno", "magma"):
        lut = colormaps[name](np.linspace(0, 1, 256))[:, :3]
        tables[name] = np.round(lut * 255).astype(int).tolist()
    (OUT / "colormaps.json").write_text(json.dumps(tables) + "\n")


def write_examples() -> None:
    """The example photos shipped in assets/examples for the README: one PNG already at the model's 352x352 (its
    pixel_values are bit-identical with Python's), two JPEGs as users usually have them."""
    examples = ROOT / "assets" / "examples"
    examples.mkdir(parents=True, exist_ok=True)
    astronaut = Image.fromarray(skimage.data.astronaut()).resize((352, 352), Image.Resampling.LANCZOS)
    astronaut.save(examples / "astronaut.png", optimize=True)
    Image.fromarray(skimage.data.coffee()).resize((480, 320), Image.Resampling.LANCZOS).save(examples / "coffee.jpg", quality=92)
    Image.fromarray(skimage.data.chelsea()).save(examples / "chelsea.jpg", quality=92)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    write_examples()
    write_inputs()
    write_processor_refs()
    write_resize_refs()
    write_decode_refs()
    write_variant_refs()
    write_postprocess_refs()
    write_visual_prompt_refs()
    write_colormaps()


if __name__ == "__main__":
    main()
