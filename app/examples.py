"""The example gallery: one problem per family of the synthetic curriculum, shipped as small PNGs + JSON.

The problems come from training.synthetic with a seed the demo model was not trained on (fresh problems
of the same kind), so the gallery shows what the demo model can do without replaying its training set.

    python -m app.examples            # regenerate app/examples/ (deterministic: same files every run)
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from model.choices import letter as choice_letter

EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
GALLERY_FILE = EXAMPLES_DIR / "gallery.json"
GALLERY_SEED = 2026
GALLERY_SPLIT = "train"  # the distribution the demo model learned; the seed makes the problems new to it


@dataclass
class Example:
    family: str
    question: str
    image: str | None  # absolute path of the diagram
    choices: list[str] | None = None
    answer: str = ""
    solution: str = ""  # the checked gold solution in the v1 format

    @property
    def label(self) -> str:
        return self.family.replace("_", " ")

    def choice_boxes(self) -> list[str]:
        """Values for the A–D textboxes."""
        values = list(self.choices or [])[:4]
        return values + [""] * (4 - len(values))

    @property
    def answer_letter(self) -> str | None:
        if self.choices and self.answer in self.choices:
            return choice_letter(self.choices.index(self.answer))
        return None


def load_gallery(path: Path = GALLERY_FILE) -> list[Example]:
    """The shipped examples; an absent gallery gives an empty list (the app works without it)."""
    if not path.is_file():
        return []
    items = json.loads(path.read_text(encoding="utf-8"))
    return [Example(family=item["family"], question=item["question"],
                    image=str(path.parent / item["image"]) if item.get("image") else None,
                    choices=item.get("choices"), answer=item.get("answer", ""), solution=item.get("solution", ""))
            for item in items]


def build_gallery(out_dir: Path = EXAMPLES_DIR, seed: int = GALLERY_SEED) -> list[dict]:
    """Generate one checked problem per curriculum family and write `<family>.png` + gallery.json."""
    from training.synthetic.generate import make_problem
    from training.synthetic.splits import families_for
    from training.targets import target_text

    out_dir.mkdir(parents=True, exist_ok=True)
    items = []
    for index, family in enumerate(families_for(GALLERY_SPLIT)):
        problem = make_problem(GALLERY_SPLIT, index, seed)  # index i is family i: one problem per family
        record = problem.record
        name = f"{record.meta['family']}.png"
        (out_dir / name).write_bytes(problem.png)
        items.append({"family": record.meta["family"], "question": record.question, "choices": record.choices,
                      "answer": record.answer, "image": name, "solution": target_text(record, "theorem"),
                      "id": record.id})
    (out_dir / GALLERY_FILE.name).write_text(json.dumps(items, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return items


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.examples", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=EXAMPLES_DIR)
    parser.add_argument("--seed", type=int, default=GALLERY_SEED)
    args = parser.parse_args(argv)
    items = build_gallery(args.out, args.seed)
    print(f"wrote {len(items)} examples ({', '.join(i['family'] for i in items)}) to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
