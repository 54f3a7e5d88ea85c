"""Regenerates every committed fixture under test/fixtures from the reference implementations.

Usage (from the repository root, after `pip install -r tools/reference/requirements.txt`):

    python tools/reference/regenerate.py

Each generator is seeded and deterministic, so a second run leaves `git status` clean. The benchmark model
(`gen_bench_model.py`) is not a fixture and is not run here.
"""
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

# Order matters: gen_checkpoints reuses the tokenizer files, gen_capture the model fixtures.
GENERATORS = [
    "gen_tokenizer.py",
    "gen_model.py",
    "gen_capture.py",
    "gen_checkpoints.py",
    "gen_images.py",
    "gen_phrasecut.py",
    "gen_adamw.py",
]


def main() -> None:
    for name in GENERATORS:
        print(f"== {name}", flush=True)
        subprocess.run([sys.executable, str(HERE / name)], check=True, cwd=HERE.parent.parent)


if __name__ == "__main__":
    main()
