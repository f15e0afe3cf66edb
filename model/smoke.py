"""Smoke run: load a model, answer the bundled example diagram, print the raw output and the figures a
maintainer checks first on a new machine (load time, tokens/s, peak memory).

    python -m model.smoke                                   # builds a tiny random checkpoint on the spot
    python -m model.smoke --model Qwen/Qwen2.5-VL-7B-Instruct --adapter runs/theorem-sft/adapter
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ASSETS = Path(__file__).resolve().parent / "assets"
EXAMPLE = ASSETS / "example_parallel_lines.json"


def load_example() -> dict:
    example = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    example["image"] = str(ASSETS / example["image"])
    return example


def example_theorems(ids) -> list[dict]:
    """The example's theorems from the theorem bank; bare ids if the bank cannot be opened here."""
    try:
        from theorem_bank import open_bank

        bank = open_bank()
        found = [bank.get(theorem_id) for theorem_id in ids]
        if all(found):
            return found
    except Exception as exc:  # the smoke run is about the model; a missing bank must not stop it
        print(f"note: theorem bank unavailable ({exc}); listing theorem ids only", file=sys.stderr)
    return [{"id": theorem_id} for theorem_id in ids]


def draw_example_diagram(path) -> Path:
    """Redraw the bundled diagram: AB ∥ CD cut by EF at G and H, ∠EGB = 50° marked, ∠GHC asked."""
    import math

    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", (360, 260), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=16)
    y_ab, y_cd = 80, 180
    g = (190.0, y_ab)
    direction = (math.cos(math.radians(50)), -math.sin(math.radians(50)))  # EF rises at 50° to AB

    def along(t):
        return (g[0] + t * direction[0], g[1] + t * direction[1])

    e, h, f = along(78), along(-(y_cd - y_ab) / -direction[1]), along(-160 / -direction[1])
    draw.line((30, y_ab, 330, y_ab), fill="black", width=2)
    draw.line((30, y_cd, 330, y_cd), fill="black", width=2)
    draw.line((e, f), fill="black", width=2)
    for x, y in (g, h):
        draw.ellipse((x - 3, y - 3, x + 3, y + 3), fill="black")
    labels = {
        "A": (14, y_ab - 10), "B": (336, y_ab - 10), "C": (14, y_cd - 10), "D": (336, y_cd - 10),
        "E": (e[0] + 6, e[1] - 10), "F": (f[0] - 16, f[1] - 14), "G": (g[0] + 4, g[1] + 4), "H": (h[0] - 6, h[1] + 6),
        "50°": (g[0] + 26, g[1] - 26), "?": (h[0] - 40, h[1] - 34),
    }  # fmt: skip
    for text, xy in labels.items():
        draw.text(xy, text, fill="black", font=font)
    r = 22
    draw.arc((g[0] - r, g[1] - r, g[0] + r, g[1] + r), start=310, end=360, fill="black", width=2)
    draw.arc((h[0] - r, h[1] - r, h[0] + r, h[1] + r), start=180, end=310, fill="black", width=2)
    image.save(path)
    return Path(path)


def printable(text: str) -> str:
    """Raw model text with control characters shown as escapes, so random-model output cannot garble a terminal."""
    return "".join(c if c in "\n\t" or c.isprintable() else repr(c)[1:-1] for c in text)


def peak_memory(device: str) -> str:
    import torch

    if device.startswith("cuda"):
        return f"{torch.cuda.max_memory_allocated() / 2**30:.2f} GiB GPU (torch.cuda.max_memory_allocated)"
    import resource

    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return f"{rss_kib / 2**20:.2f} GiB peak RSS (CPU)"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model.smoke", description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="hub id or checkpoint/adapter directory (default: a tiny checkpoint built now)")
    parser.add_argument("--adapter", help="PEFT LoRA adapter directory to apply on --model (or on its recorded base)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    parser.add_argument("--dtype", default="auto", help="auto, bfloat16, float16, float32")
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--min-pixels", type=int, default=None)
    parser.add_argument("--max-pixels", type=int, default=None)
    args = parser.parse_args(argv)

    from model.generation import GenerationOptions, generate_completions
    from model.images import ImageOptions
    from model.loading import DeviceError, ModelLoadError, load_model, resolve_device
    from model.prompting import build_messages

    try:
        resolve_device(args.device)  # fail before building or loading anything
    except DeviceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    image_options = ImageOptions(
        **{k: v for k, v in (("min_pixels", args.min_pixels), ("max_pixels", args.max_pixels)) if v is not None}
    )
    scratch = None
    model = args.model
    if model is None and args.adapter is None:
        from model.tiny import build_tiny_checkpoint

        scratch = tempfile.TemporaryDirectory(prefix="tiny-qwen2.5-vl-")
        model = build_tiny_checkpoint(scratch.name, seed=0)
        print(f"no --model given: built a tiny random Qwen2.5-VL checkpoint in {model} (expect gibberish output)")
    try:
        try:
            loaded = load_model(model, adapter=args.adapter, device=args.device, dtype=args.dtype)
        except (ModelLoadError, DeviceError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(f"model: {loaded.describe()}")
        print(f"load time: {loaded.load_seconds:.2f} s")

        example = load_example()
        messages = build_messages(
            example["question"],
            choices=example["choices"],
            image=example["image"],
            theorems=example_theorems(example["theorems"]),
        )
        started = time.perf_counter()
        completion = generate_completions(
            loaded, [messages], GenerationOptions(max_new_tokens=args.max_new_tokens), image_options
        )[0]
        seconds = time.perf_counter() - started
        print(f"question: {example['question']}  (expected answer: {example['answer']})")
        print("----- raw output -----")
        print(printable(completion.text))
        print("----------------------")
        stop = "stop token" if completion.finished else f"max_new_tokens={args.max_new_tokens}"
        print(f"generated {completion.num_tokens} tokens in {seconds:.2f} s ({completion.num_tokens / seconds:.1f} tokens/s, ended by {stop})")
        print(f"peak memory: {peak_memory(loaded.device)}")
    finally:
        if scratch is not None:
            scratch.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
