#!/usr/bin/python3
"""PyTorch baseline for tests/bench/bench_clip.c: a plain re-implementation of HF CLIPModel's
forward pass (Debian python3-torch, CPU) loading the same config.json + model.safetensors
(parsed with numpy), timed on the same workloads: image batch 1 and 8, text of 10 and 77
tokens, and a 2048^3 float32 matmul. Not the reference for correctness (testdata is); --check
only confirms this baseline computes CLIP, so that its timings compare like with like."""

import argparse
import json
import math
import statistics
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

SOT_TOKEN, EOT_TOKEN = 49406, 49407
NUMPY_DTYPES = {
    "BOOL": np.bool_, "U8": np.uint8, "I8": np.int8, "U16": np.uint16, "I16": np.int16,
    "F16": np.float16, "U32": np.uint32, "I32": np.int32, "F32": np.float32,
    "U64": np.uint64, "I64": np.int64, "F64": np.float64,
}


def load_safetensors(path):
    """Returns {name: torch tensor} for a .safetensors file (BF16 widened to float32)."""
    raw = np.memmap(path, dtype=np.uint8, mode="r")
    (header_len,) = struct.unpack("<Q", raw[:8].tobytes())
    header = json.loads(raw[8:8 + header_len].tobytes())
    base = 8 + header_len
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        chunk = raw[base + begin:base + end]
        if entry["dtype"] == "BF16":
            values = (chunk.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
        else:
            values = chunk.view(NUMPY_DTYPES[entry["dtype"]])
        tensors[name] = torch.from_numpy(np.array(values).reshape(entry["shape"]))
    return tensors


class ClipTorch:
    """HF CLIPModel forward (README section 2) on a dict of weights; with task, each encoder
    layer also adds that task's TSA adapter on z' (MODEL.md section 2, contrastive mode)."""

    def __init__(self, config, weights):
        self.w = weights
        self.vision = config["vision_config"]
        self.text = config["text_config"]

    def layer_norm(self, x, prefix, eps):
        return F.layer_norm(x, x.shape[-1:], self.w[prefix + ".weight"], self.w[prefix + ".bias"],
                            eps)

    def linear(self, x, prefix, bias=True):
        return F.linear(x, self.w[prefix + ".weight"], self.w[prefix + ".bias"] if bias else None)

    def adapter(self, x, prefix):
        """A(x) = s * (up(relu(down(LN(x))))), MODEL.md section 2."""
        h = F.relu(self.linear(self.layer_norm(x, prefix + ".ln", 1e-5), prefix + ".down"))
        return self.w[prefix + ".scale"] * self.linear(h, prefix + ".up")

    def attention(self, x, prefix, heads, causal):
        batch, tokens, width = x.shape
        head_dim = width // heads

        def split(name):
            return self.linear(x, prefix + name).view(batch, tokens, heads, head_dim).transpose(1, 2)

        q, k, v = split(".q_proj"), split(".k_proj"), split(".v_proj")
        scores = (q * head_dim ** -0.5) @ k.transpose(-1, -2)
        if causal:
            mask = torch.full((tokens, tokens), float("-inf")).triu(1)
            scores = scores + mask
        mixed = (scores.softmax(-1) @ v).transpose(1, 2).reshape(batch, tokens, width)
        return self.linear(mixed, prefix + ".out_proj")

    def encoder(self, x, tower, cfg, causal, task=None):
        eps = cfg["layer_norm_eps"]
        for i in range(cfg["num_hidden_layers"]):
            p = f"{tower}.encoder.layers.{i}"
            x = x + self.attention(self.layer_norm(x, p + ".layer_norm1", eps), p + ".self_attn",
                                   cfg["num_attention_heads"], causal)
            h = self.linear(self.layer_norm(x, p + ".layer_norm2", eps), p + ".mlp.fc1")
            tsa = self.adapter(x, f"{p}.tsa.{task}") if task else 0
            x = x + self.linear(h * torch.sigmoid(1.702 * h), p + ".mlp.fc2") + tsa
        return x

    def encode_pixels(self, pixels, task=None):
        """pixels [B,3,S,S] -> unnormalised image embeddings [B,P] (with task's TSA if set)."""
        cfg, w = self.vision, self.w
        x = F.conv2d(pixels, w["vision_model.embeddings.patch_embedding.weight"],
                     stride=cfg["patch_size"]).flatten(2).transpose(1, 2)
        cls = w["vision_model.embeddings.class_embedding"].expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], 1) + w["vision_model.embeddings.position_embedding.weight"]
        x = self.layer_norm(x, "vision_model.pre_layrnorm", cfg["layer_norm_eps"])
        x = self.encoder(x, "vision_model", cfg, causal=False, task=task)
        pooled = self.layer_norm(x[:, 0], "vision_model.post_layernorm", cfg["layer_norm_eps"])
        return self.linear(pooled, "visual_projection", bias=False)

    def encode_text_ids(self, ids, task=None):
        """ids [B,T] int64 -> unnormalised text embeddings [B,P], pooled at the first max id
        (with task's TSA if set)."""
        cfg, w = self.text, self.w
        positions = w["text_model.embeddings.position_embedding.weight"][:ids.shape[1]]
        x = w["text_model.embeddings.token_embedding.weight"][ids] + positions
        x = self.encoder(x, "text_model", cfg, causal=True, task=task)
        x = self.layer_norm(x, "text_model.final_layer_norm", cfg["layer_norm_eps"])
        pooled = x[torch.arange(ids.shape[0]), ids.argmax(-1)]
        return self.linear(pooled, "text_projection", bias=False)


def load_model(model_dir):
    with open(f"{model_dir}/config.json") as f:
        config = json.load(f)
    return ClipTorch(config, load_safetensors(f"{model_dir}/model.safetensors"))


def vision_gflop(cfg, projection_dim):
    """Multiply-adds x2 of one image (35.1 GFLOP for ViT-B/16); same formula as bench_clip.c."""
    grid = cfg["image_size"] // cfg["patch_size"]
    t, d, mlp = grid * grid + 1, cfg["hidden_size"], cfg["intermediate_size"]
    patch = grid * grid * 3 * cfg["patch_size"] ** 2 * d
    layer = 4 * t * d * d + 2 * t * t * d + 2 * t * d * mlp
    return 2 * (patch + cfg["num_hidden_layers"] * layer + d * projection_dim) / 1e9


def measure(run, repeats):
    """One warm-up call, then the median and minimum of `repeats` timed calls (seconds)."""
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times)


def token_rows(rows, tokens, vocab):
    generator = torch.Generator().manual_seed(12345)
    ids = torch.randint(0, vocab - 2, (rows, tokens), generator=generator)
    ids[:, 0], ids[:, -1] = SOT_TOKEN, EOT_TOKEN
    return ids


def run_benchmark(args):
    model = load_model(args.model_dir)
    size = model.vision["image_size"]
    pixels = torch.rand((8, 3, size, size), generator=torch.Generator().manual_seed(3)) * 2 - 1
    vocab, context = model.text["vocab_size"], model.text["max_position_embeddings"]
    ids10, ids77 = token_rows(1, 10, vocab), token_rows(1, context, vocab)
    work = [("image batch 1", 1, lambda: model.encode_pixels(pixels[:1])),
            ("image batch 8", 8, lambda: model.encode_pixels(pixels)),
            ("text 10 tokens", 1, lambda: model.encode_text_ids(ids10)),
            (f"text {context} tokens", 1, lambda: model.encode_text_ids(ids77))]
    results = []
    with torch.inference_mode():
        for name, items, run in work:
            median, fastest = measure(run, args.repeats)
            results.append({"name": name, "items": items, "median_s": median, "min_s": fastest})
        n = args.sgemm_size
        a, b = torch.rand(n, n) * 2 - 1, torch.rand(n, n) * 2 - 1
        matmul_s, _ = measure(lambda: torch.mm(a, b), args.repeats)
    matmul_gflops = 2 * n ** 3 / matmul_s / 1e9
    vit = vision_gflop(model.vision, model.w["visual_projection.weight"].shape[0])
    return results, matmul_gflops, vit


def print_table(args, results, matmul_gflops, vit):
    print(f"pytorch {torch.__version__}, {args.model_dir}, {torch.get_num_threads()} threads, "
          f"median of {args.repeats}")
    print(f"{'workload':<22} {'median ms':>12} {'ms / item':>12} {'items / s':>12}")
    for r in results:
        per_item = r["median_s"] / r["items"]
        print(f"{r['name']:<22} {1e3 * r['median_s']:12.3f} {1e3 * per_item:12.3f} "
              f"{1 / per_item:12.2f}")
    print(f"torch.mm: {matmul_gflops:.1f} GFLOP/s")
    for r in results[:2]:
        rate = vit * r["items"] / r["median_s"]
        print(f"{r['name']}: {rate:.1f} GFLOP/s = {100 * rate / matmul_gflops:.0f}% of torch.mm "
              f"({vit:.2f} GFLOP per image)")


def check_against_testdata(vectors_dir):
    """Compares this baseline's embeddings with testdata's clip-tiny expected vectors."""
    model = load_model(vectors_dir)
    expected = load_safetensors(f"{vectors_dir}/expected.safetensors")
    with torch.inference_mode():
        image = model.encode_pixels(expected["vision.pixel_values"])
        text = model.encode_text_ids(expected["text.input_ids"])
    image_diff = (image - expected["vision.image_embeds_unnorm"]).abs().max().item()
    text_diff = (text - expected["text.text_embeds_unnorm"]).abs().max().item()
    print(f"check {vectors_dir}: max |diff| image embeds {image_diff:.3g}, "
          f"text embeds {text_diff:.3g} (tolerance 1e-4)")
    return image_diff <= 1e-4 and text_diff <= 1e-4


def write_report(path, report):
    """Writes report as indented JSON to path, or to standard output for "-"."""
    text = json.dumps(report, indent=2)
    if path == "-":
        print(text)
    else:
        with open(path, "w") as f:
            f.write(text + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir", nargs="?", help="checkpoint directory (config.json + "
                        "model.safetensors)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per workload")
    parser.add_argument("--sgemm-size", type=int, default=2048, help="matmul size (default 2048)")
    parser.add_argument("--json", help="also write the results as JSON to this file, or -")
    parser.add_argument("--check", metavar="VECTORS_DIR",
                        help="compare embeddings with testdata's clip-tiny vectors, then exit")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.check:
        return 0 if check_against_testdata(args.check) else 1
    if not args.model_dir or args.repeats < 1:
        parser.error("a model directory and --repeats >= 1 are required")
    results, matmul_gflops, vit = run_benchmark(args)
    print_table(args, results, matmul_gflops, vit)
    if args.json:
        report = {"engine": "pytorch", "torch": torch.__version__, "model": args.model_dir,
                  "threads": torch.get_num_threads(), "repeats": args.repeats,
                  "results": results, "sgemm": {"n": args.sgemm_size, "gflops": matmul_gflops},
                  "vision_gflop": vit}
        write_report(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
