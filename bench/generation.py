"""Generation throughput on the tiny Qwen2.5-VL on CPU: one prompt at a time versus batches of 8 (left padding).

    python bench/generation.py [--max-new-tokens 64] [--threads 1]

Prints ONE JSON line. The target is batch8 / one_by_one >= 3.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: the tiny model is overhead-bound)")
    parser.add_argument("--prompts", type=int, default=8)
    args = parser.parse_args(argv)

    import torch

    from model.generation import GenerationOptions, generate_completions
    from model.images import CELL, ImageOptions
    from model.loading import load_model
    from model.prompting import build_messages
    from model.smoke import load_example
    from model.tiny import build_tiny_checkpoint

    torch.set_num_threads(args.threads)
    example = load_example()
    questions = [
        "Find ∠GHC.",
        "AB = 3, BC = 4 and ∠B = 90°. How long is AC?",
        "In circle O the inscribed angle ∠ACB = 35°. Find ∠AOB.",
        "Two angles form a linear pair; one is 70°. Find the other.",
        "An isosceles triangle has a vertex angle of 40°. Find a base angle.",
        "A regular hexagon: find one interior angle.",
        "A sector has radius 6 and angle 60°. Find its area.",
        "The midline of triangle ABC is 5. Find BC.",
    ]
    conversations = [
        build_messages(questions[i % len(questions)], image=example["image"] if i % 2 == 0 else None)
        for i in range(args.prompts)
    ]
    images = ImageOptions(min_pixels=16 * CELL * CELL, max_pixels=64 * CELL * CELL)
    # A random model stops at arbitrary points; with stop tokens switched off (below) every prompt generates
    # exactly max_new_tokens, so both modes do the same work.
    options = GenerationOptions(max_new_tokens=args.max_new_tokens)

    with tempfile.TemporaryDirectory() as scratch:
        loaded = load_model(build_tiny_checkpoint(scratch, seed=0), device="cpu", dtype="float32")
        loaded.model.generation_config.eos_token_id = None  # fixed-length outputs: same work in both modes
        generate_completions(loaded, conversations[:2], GenerationOptions(max_new_tokens=4), images)  # warm-up

        started = time.perf_counter()
        single = [generate_completions(loaded, [c], options, images, batch_size=1)[0] for c in conversations]
        single_seconds = time.perf_counter() - started

        started = time.perf_counter()
        batched = generate_completions(loaded, conversations, options, images, batch_size=8)
        batch_seconds = time.perf_counter() - started

    single_rate = sum(c.num_tokens for c in single) / single_seconds
    batch_rate = sum(c.num_tokens for c in batched) / batch_seconds
    print(
        json.dumps(
            {
                "bench": "generation",
                "model": "tiny Qwen2.5-VL (model.tiny defaults, seed 0)",
                "device": "cpu",
                "dtype": "float32",
                "torch_threads": args.threads,
                "prompts": len(conversations),
                "prompts_with_image": sum(1 for i in range(len(conversations)) if i % 2 == 0),
                "max_new_tokens": args.max_new_tokens,
                "one_by_one_tokens_per_s": round(single_rate, 1),
                "batch8_tokens_per_s": round(batch_rate, 1),
                "batch8_over_one_by_one": round(batch_rate / single_rate, 2),
                "target_ratio": 3.0,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
