#!/usr/bin/python3
"""PyTorch baseline for `bench_train --task xmr`: one FAME-ViL XMR training step (Debian
python3-torch, CPU) on the same checkpoint and the same inputs: forward of both CLIP towers with
TSA_xmr (bench_torch.py's CLIP), Norm_xmr, the symmetric contrastive loss, autograd backward,
then torch.optim.AdamW over every tensor of the checkpoint, as bench_train's optimiser. Not the
reference for correctness (testdata is); --check only confirms that this baseline computes the
engine's step, so that the timings compare like with like."""

import argparse
import ctypes
import os
import re
import statistics
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(HERE, "..", "integration")]

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from bench_torch import load_model, load_safetensors, write_report  # noqa: E402
from tailord_harness import Tap  # noqa: E402

# bench_train.c's optimiser: AdamW (0.9, 0.999), eps 1e-8, weight decay 1e-5 on tensors of
# two or more dimensions only, one learning rate of 1e-5 for every part.
LR, BETAS, EPS, WEIGHT_DECAY = 1e-5, (0.9, 0.999), 1e-8, 1e-5


class XmrStep:
    """The XMR training step on a bench_torch ClipTorch whose every float tensor is trained."""

    def __init__(self, model, foreach=False):
        self.model = model
        params = [t for t in model.w.values() if t.is_floating_point()]
        for t in params:
            t.requires_grad_(True)
            t.grad = torch.zeros_like(t)  # like the engine, AdamW steps untouched tensors too
        groups = [{"params": [t for t in params if t.dim() >= 2], "weight_decay": WEIGHT_DECAY},
                  {"params": [t for t in params if t.dim() < 2], "weight_decay": 0.0}]
        self.optimizer = torch.optim.AdamW(groups, lr=LR, betas=BETAS, eps=EPS, foreach=foreach)

    def loss(self, pixels, ids):
        """1/2 [CE(v t^T, diag) + CE(t v^T, diag)], v, t = sigma_xmr * n(embeds with TSA_xmr)."""
        sigma = self.model.w["heads.xmr.scale"]
        v = self.model.encode_pixels(pixels, task="xmr")
        t = self.model.encode_text_ids(ids, task="xmr")
        v = sigma * v / v.norm(dim=-1, keepdim=True)
        t = sigma * t / t.norm(dim=-1, keepdim=True)
        logits = v @ t.T
        target = torch.arange(logits.shape[0])
        return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))

    def forward_backward(self, pixels, ids):
        """Zeroes the gradients, then forward, loss and backward; returns the loss."""
        self.optimizer.zero_grad(set_to_none=False)
        loss = self.loss(pixels, ids)
        loss.backward()
        return loss.item()

    def update(self):
        self.optimizer.step()


def engine_batch(model, batch, text_len):
    """bench_train's make_batch, value for value (the C library's srand(1) and rand()):
    pixels [B,3,S,S] in [-1, 1] and ids [B,L] = SOS, words 1..V-3, EOS (the vocabulary's two
    highest ids)."""
    libc = ctypes.CDLL(None)
    libc.srand(1)

    def draw(n):
        return np.fromiter((libc.rand() for _ in range(n)), dtype=np.int64, count=n)

    size, vocab = model.vision["image_size"], model.text["vocab_size"]
    projection = model.w["visual_projection.weight"].shape[0]
    rand_max = np.float32(2147483647)  # glibc RAND_MAX, as C's float conversion rounds it
    pixels = draw(batch * 3 * size * size).astype(np.float32) / rand_max * np.float32(2)
    pixels = pixels - np.float32(1)
    draw(4 * batch * projection)  # the NTM turns and gallery, drawn before the ids
    ids = 1 + draw(batch * text_len).reshape(batch, text_len) % (vocab - 3)
    ids[:, 0], ids[:, -1] = vocab - 2, vocab - 1
    return torch.from_numpy(pixels.reshape(batch, 3, size, size)), torch.from_numpy(ids)


def run_steps(step, pixels, ids, steps, report):
    """Step 0 warms up; report(s, loss, forward_backward_s, adamw_s) after each step."""
    for s in range(steps + 1):
        start = time.perf_counter()
        loss = step.forward_backward(pixels, ids)
        middle = time.perf_counter()
        step.update()
        report(s, loss, middle - start, time.perf_counter() - middle)


def run_benchmark(args):
    step = XmrStep(load_model(args.model_dir), args.foreach)
    pixels, ids = engine_batch(step.model, args.batch, args.text_len)
    rows = []

    def report(s, loss, fb, adamw):
        print(f"step {s}: loss {loss:.4f}, forward+backward {fb:.3f} s, adamw {adamw:.3f} s")
        rows.append((loss, fb, adamw))

    run_steps(step, pixels, ids, args.steps, report)
    timed = rows[1:]
    fb, adamw = [r[1] for r in timed], [r[2] for r in timed]
    return {"losses": [r[0] for r in rows],
            "forward_backward_median_s": statistics.median(fb), "forward_backward_min_s": min(fb),
            "adamw_median_s": statistics.median(adamw),
            "step_median_s": statistics.median(f + a for f, a in zip(fb, adamw)),
            "samples_per_s": args.batch * len(timed) / (sum(fb) + sum(adamw))}


def check_reference(tap, vectors_dir):
    """Loss and gradients of tailor-tiny's XMR batch against its float64 reference
    (testdata README T6/T8 tolerances)."""
    step = XmrStep(load_model(vectors_dir))
    inputs = load_safetensors(f"{vectors_dir}/inputs.safetensors")
    expected = load_safetensors(f"{vectors_dir}/expected.safetensors")
    reference = load_safetensors(f"{vectors_dir}/grads.xmr.safetensors")
    pixels = inputs["pixel_values"][inputs["xmr_image"]]
    loss = step.forward_backward(pixels, inputs["input_ids"][inputs["xmr_text"]])
    want = expected["loss.xmr"].item()
    tap.ok(abs(loss - want) <= 1e-4, f"tailor-tiny loss.xmr {loss:.6f} (reference {want:.6f})")
    scale = max(g.abs().max().item() for g in reference.values())
    worst, name = max((((step.model.w[n].grad.double() - g).abs().max().item() /
                        (1e-3 * g.abs().max().item() + 1e-6 * scale)), n)
                      for n, g in reference.items())
    tap.ok(worst <= 1, f"{len(reference)} gradients within tolerance "
           f"(worst {name}: {worst:.3f} of it)")
    stray = [n for n, t in step.model.w.items()
             if n not in reference and t.grad is not None and t.grad.abs().max().item() != 0]
    tap.ok(not stray, f"{len(step.model.w) - len(reference)} parameters off the loss's path get "
           "no gradient", ", ".join(stray))


def check_engine(tap, engine, model_dir, threads):
    """Loss of each step of `bench_train --task xmr` against this step on the same inputs."""
    batch, text_len, steps = 4, 16, 2
    run = subprocess.run([engine, model_dir, "--task", "xmr", "--batch", str(batch), "--steps",
                          str(steps), "--threads", str(threads), "--text-len", str(text_len)],
                         capture_output=True, text=True)
    engine_losses = [float(x) for x in re.findall(r"^step \d+: loss (\S+),", run.stdout, re.M)]
    if not tap.ok(run.returncode == 0 and len(engine_losses) == steps + 1,
                  f"bench_train ran {steps + 1} steps", run.stdout + run.stderr):
        return
    step = XmrStep(load_model(model_dir))
    pixels, ids = engine_batch(step.model, batch, text_len)
    losses = []
    run_steps(step, pixels, ids, steps, lambda s, loss, fb, adamw: losses.append(loss))
    for s, (mine, theirs) in enumerate(zip(losses, engine_losses)):
        tap.ok(abs(mine - theirs) <= 2e-4, f"step {s}: torch loss {mine:.6f}, "
               f"engine {theirs:.4f}")  # the engine prints 4 decimals
    tap.ok(losses[-1] < losses[0], f"loss falls over {steps + 1} steps on a fixed batch")


def print_summary(args, results):
    print(f"pytorch {torch.__version__}, {args.model_dir}, {torch.get_num_threads()} threads, "
          f"median of {args.steps}, AdamW {'foreach' if args.foreach else 'per-tensor'}")
    print(f"xmr batch {args.batch}: forward+backward median "
          f"{results['forward_backward_median_s']:.3f} s (min "
          f"{results['forward_backward_min_s']:.3f}), adamw median "
          f"{results['adamw_median_s']:.3f} s, {results['samples_per_s']:.1f} samples/s")
    print(f"step median {results['step_median_s']:.3f} s")


def write_json(args, results):
    report = {"engine": "pytorch", "torch": torch.__version__, "model": args.model_dir,
              "threads": torch.get_num_threads(), "task": "xmr", "batch": args.batch,
              "text_len": args.text_len, "steps": args.steps, "adamw_foreach": args.foreach,
              "results": results}
    write_report(args.json, report)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir", nargs="?", help="checkpoint directory with adapters "
                        "(make_random_clip --adapters 64)")
    parser.add_argument("--batch", type=int, default=8, help="image-text pairs per step (8)")
    parser.add_argument("--steps", type=int, default=5, help="timed steps after 1 warm-up (5)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--text-len", type=int, default=16,
                        help="tokens per text incl. SOS/EOS (default 16, as bench_train)")
    parser.add_argument("--foreach", action="store_true",
                        help="AdamW's multi-tensor (foreach) update instead of torch's default "
                        "per-tensor loop")
    parser.add_argument("--json", help="also write the results as JSON to this file, or -")
    parser.add_argument("--check", metavar="VECTORS_DIR",
                        help="TAP: loss and gradients against testdata's tailor-tiny vectors, "
                        "and step losses against --engine on that checkpoint, then exit")
    parser.add_argument("--engine", default=os.path.join(HERE, "..", "..", "build", "tests",
                                                         "bench", "bench_train"),
                        help="bench_train binary for --check (default build/tests/bench/)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.check:
        tap = Tap()
        check_reference(tap, args.check)
        check_engine(tap, args.engine, args.check, args.threads)
        return tap.done()
    if not args.model_dir or args.steps < 1 or args.batch < 1 or args.text_len < 2:
        parser.error("a model directory, --steps >= 1, --batch >= 1, --text-len >= 2 required")
    results = run_benchmark(args)
    print_summary(args, results)
    if args.json:
        write_json(args, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
