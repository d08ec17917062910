#!/usr/bin/env python3
"""PyTorch CPU training of a Hugging Face BERT classifier, the peer of Sparrow's trainer in
`deno task bench train` (bench/train.ts), which writes the batches and runs this script:

    /usr/bin/python3 bench/train_torch.py --model DIR --batches FILE.json [--steps N] [--warmup N]
        [--threads N] [--lr X]

The model is built from config.json in plain torch ops (no transformers package), float32, with
the weights of model.safetensors; dropout is off, as in Sparrow's trainer. Each step is Sparrow's:
the batch's mean cross-entropy, backward, AdamW (decoupled weight decay 0.01, none on biases and
LayerNorm weights), the same batches `[batch, seq]` with their attention masks, in order. `--warmup`
untimed steps run first. Prints one JSON line: samples/s over the timed steps, seconds per step,
the losses, the threads and torch's version.
"""

import argparse
import json
import math
import time
from pathlib import Path

import torch


def read_safetensors(path):
    data = path.read_bytes()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n])
    header.pop("__metadata__", None)
    out = {}
    for name, info in header.items():
        if info["dtype"] != "F32":
            continue
        a, b = info["data_offsets"]
        buf = bytearray(data[8 + n + a : 8 + n + b])
        out[name] = torch.frombuffer(buf, dtype=torch.float32).reshape(info["shape"]).clone()
    return out


def forward(p, cfg, ids, mask):
    """Logits [B, labels] of a padded batch (attention mask 0 on padding: -10000 before softmax)."""
    H, A = cfg["hidden_size"], cfg["num_attention_heads"]
    eps = cfg.get("layer_norm_eps", 1e-12)
    B, S = ids.shape
    dh = H // A
    e = "bert.embeddings."
    x = p[e + "word_embeddings.weight"][ids] + p[e + "position_embeddings.weight"][:S] + p[e + "token_type_embeddings.weight"][0]
    ln = lambda x, n: torch.nn.functional.layer_norm(x, (H,), p[n + ".weight"], p[n + ".bias"], eps)
    lin = lambda x, n: torch.nn.functional.linear(x, p[n + ".weight"], p[n + ".bias"])
    x = ln(x, e + "LayerNorm")
    add = ((1.0 - mask.to(torch.float32)) * -10000.0)[:, None, None, :]
    heads = lambda t: t.reshape(B, S, A, dh).transpose(1, 2)
    for i in range(cfg["num_hidden_layers"]):
        n = f"bert.encoder.layer.{i}."
        q, k, v = (heads(lin(x, n + "attention.self." + w)) for w in ("query", "key", "value"))
        probs = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(dh) + add, dim=-1)
        ctx = (probs @ v).transpose(1, 2).reshape(B, S, H)
        x = ln(lin(ctx, n + "attention.output.dense") + x, n + "attention.output.LayerNorm")
        h = torch.nn.functional.gelu(lin(x, n + "intermediate.dense"))
        x = ln(lin(h, n + "output.dense") + x, n + "output.LayerNorm")
    pooled = torch.tanh(lin(x[:, 0], "bert.pooler.dense"))
    return lin(pooled, "classifier")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--batches", required=True)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--lr", type=float, default=5e-5)
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    model = Path(a.model)
    cfg = json.loads((model / "config.json").read_text())
    p = {k: v.requires_grad_(True) for k, v in read_safetensors(model / "model.safetensors").items()}
    no_decay = lambda n: n.endswith("bias") or "LayerNorm" in n
    opt = torch.optim.AdamW(
        [
            {"params": [v for k, v in p.items() if not no_decay(k)], "weight_decay": 0.01},
            {"params": [v for k, v in p.items() if no_decay(k)], "weight_decay": 0.0},
        ],
        lr=a.lr,
    )
    spec = json.loads(Path(a.batches).read_text())
    B, S = spec["batch"], spec["seq"]
    batches = [
        (torch.tensor(b["ids"]).reshape(B, S), torch.tensor(b["mask"]).reshape(B, S), torch.tensor(b["labels"]))
        for b in spec["batches"]
    ]
    losses, times = [], []
    for step in range(a.warmup + a.steps):
        ids, mask, labels = batches[step % len(batches)]
        t0 = time.perf_counter()
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(forward(p, cfg, ids, mask), labels)
        loss.backward()
        opt.step()
        dt = time.perf_counter() - t0
        losses.append(loss.item())
        if step >= a.warmup:
            times.append(dt)
    total = sum(times)
    print(
        json.dumps(
            {
                "engine": "pytorch",
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
                "batch": B,
                "seq": S,
                "steps": a.steps,
                "warmup": a.warmup,
                "seconds": total,
                "seconds_per_step": total / max(1, len(times)),
                "samples_per_s": B * len(times) / total if total > 0 else None,
                "losses": losses,
            }
        )
    )


if __name__ == "__main__":
    main()
