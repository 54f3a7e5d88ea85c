"""Writes test/fixtures/adamw/: torch.optim.AdamW steps and learning-rate schedules.

Outputs (one safetensors file, float32 tensors, a JSON object in the metadata entry "fixture"):
  adamw.safetensors
    init.<name>              parameters before the first step
    grad.<t>.<name>          the fixed gradient fed at step t (0-based); absent for SKIPPED at step 1,
                             which torch then leaves untouched (its own step count lags by one)
    param.<t>.<name>         parameters after step t
    m.<name>, v.<name>       first and second moments after the last step
    fixture.lrs              the learning rate of each step (CosineAnnealingLR, T_max=STEPS_TOTAL)
    fixture.decay            names of the parameters in the weight-decay group (rank >= 2)
    fixture.hyper            betas, eps, weight decay, base and minimum learning rate
    fixture.cosine           CosineAnnealingLR(T_max=20, eta_min=1e-4) stepped 25 times from 1e-3
    fixture.warmup           SequentialLR(LinearLR(1/5 -> 1 over 5 steps), CosineAnnealingLR(T_max=15)) for 20 steps

The optimizer runs the single-tensor path (foreach=False), one parameter group with weight decay 0.01
for tensors of rank >= 2 and one without decay for biases and norm weights.

Run: /work/.refvenv/bin/python tools/reference/gen_adamw.py
"""

import json
import os

import torch
from safetensors.torch import save_file

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "test", "fixtures", "adamw")

SHAPES = {
    "decoder.film_mul.weight": (6, 4),
    "decoder.film_mul.bias": (6,),
    "decoder.transposed_convolution.weight": (3, 2, 2, 2),
    "decoder.layers.0.layer_norm1.weight": (5,),
    "decoder.layers.0.layer_norm1.bias": (5,),
    "clip.text_model.embeddings.token_embedding.weight": (7, 3),
}
STEPS = 3
SKIPPED = "decoder.transposed_convolution.weight"
STEPS_TOTAL = 10
LR, MIN_LR, WD, BETAS, EPS = 1e-3, 1e-4, 0.01, (0.9, 0.999), 1e-8


def scheduled_lrs(base, make_scheduler, n):
    """The learning rate of each of n steps of a scheduler stepped once per optimizer step."""
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=base)
    sched = make_scheduler(opt)
    out = []
    for _ in range(n):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def cosine_lrs(base, eta_min, t_max, n):
    return scheduled_lrs(base, lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=t_max, eta_min=eta_min), n)


def warmup_lrs(base, eta_min, warmup, total):
    def make(opt):
        linear = torch.optim.lr_scheduler.LinearLR(opt, start_factor=1 / warmup, end_factor=1.0, total_iters=warmup - 1)
        cosine = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total - warmup, eta_min=eta_min)
        return torch.optim.lr_scheduler.SequentialLR(opt, [linear, cosine], milestones=[warmup])

    return scheduled_lrs(base, make, total)


def main():
    torch.manual_seed(1234)
    params = {k: torch.nn.Parameter(torch.randn(s)) for k, s in SHAPES.items()}
    decay = [k for k, p in params.items() if p.dim() >= 2]
    no_decay = [k for k, p in params.items() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [
            {"params": [params[k] for k in decay], "weight_decay": WD},
            {"params": [params[k] for k in no_decay], "weight_decay": 0.0},
        ],
        lr=LR,
        betas=BETAS,
        eps=EPS,
        foreach=False,
    )
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=STEPS_TOTAL, eta_min=MIN_LR)
    tensors = {f"init.{k}": p.detach().clone() for k, p in params.items()}
    lrs = []
    for t in range(STEPS):
        lrs.append(opt.param_groups[0]["lr"])
        for k, p in params.items():
            # Gradients of very different magnitudes so the bias corrections and eps both matter.
            g = torch.randn(p.shape) * (10.0 ** (t - 2))
            if t == 1 and k == SKIPPED:
                # No gradient: torch skips the parameter entirely (no decay, no moment update, its step stays).
                p.grad = None
                continue
            p.grad = g
            tensors[f"grad.{t}.{k}"] = g.clone()
        opt.step()
        sched.step()
        for k, p in params.items():
            tensors[f"param.{t}.{k}"] = p.detach().clone()
    for k, p in params.items():
        state = opt.state[p]
        tensors[f"m.{k}"] = state["exp_avg"].clone()
        tensors[f"v.{k}"] = state["exp_avg_sq"].clone()
    # One metadata entry: safetensors stores metadata in a hash map, so several entries come out in varying order.
    metadata = {
        "fixture": json.dumps(
            {
                "lrs": lrs,
                "decay": decay,
                "hyper": {"lr": LR, "min_lr": MIN_LR, "weight_decay": WD, "betas": BETAS, "eps": EPS, "steps": STEPS_TOTAL},
                "cosine": cosine_lrs(1e-3, 1e-4, 20, 25),
                "warmup": warmup_lrs(1e-3, 1e-4, 5, 20),
                "torch": torch.__version__,
            },
            sort_keys=True,
        )
    }
    os.makedirs(OUT, exist_ok=True)
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(OUT, "adamw.safetensors"), metadata=metadata)


if __name__ == "__main__":
    main()
