"""One prompt from data to screen: a checkpoint trained with retrieved theorems in its prompt is prompted byte for
byte the same way by the trainer, by `evaluate.py run` with its defaults, and by the app."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "fixtures" / "train"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny model trained one step with 2 theorems (BM25-retrieved, by question and choices) in its prompt."""
    from training.config import load_config
    from training.trainer import run_training

    out = tmp_path_factory.mktemp("identity") / "run"
    config = load_config(REPO / "configs" / "tiny-test.yaml", [
        f"train.output_dir={out}", "train.max_steps=1", "train.save_steps=100", "data.prompt_theorems=2",
        "data.retrieval_mode=bm25", "data.retrieval_query=question+choices"])
    run_training(config)
    return out


def rendered(processor, messages) -> str:
    return processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def test_trainer_evaluator_and_app_build_the_same_prompt(trained, tmp_path):
    from transformers import AutoProcessor

    import evaluate
    from app import handlers, serving
    from model.images import load_image
    from model.profile import load_profile
    from theorem_bank import open_bank
    from training.collator import PrepareStats, fingerprint
    from training.config import load_config
    from training.evaluation.benchmarks import load_benchmark
    from training.evaluation.run import evaluation_profile
    from training.evaluation.runner import EvalItem, RunSettings, build_prompt
    from training.trainer import load_examples

    profile = load_profile(trained)
    assert profile.origin == "train.py" and profile.prompt_theorems == 2
    assert profile.retrieval_query == "question+choices" and profile.repetition_penalty == 1.0
    assert profile.max_new_tokens >= profile.longest_target_tokens > 0

    # The trainer's prompts, rebuilt from the checkpoint's own config; the data fingerprint proves that these are
    # the prompts it trained on.
    config = load_config(trained / "train_config.yaml")
    examples, records = load_examples(config, "train", PrepareStats())
    trained_on = json.loads((trained / "data_fingerprint.json").read_text(encoding="utf-8"))
    assert fingerprint(examples)["sha256"] == trained_on["sha256"]
    by_id = {r.id: (e, r) for e, r in zip(examples, records)}
    example, record = by_id["tri-train-0"]  # a record with a diagram and four choices
    assert record.choices and record.image

    # evaluate.py with its defaults, on the same data file
    args = evaluate.build_parser().parse_args(["run", "--benchmark", "synthetic", "--data", str(DATA), "--split",
                                               "train", "--model", str(trained), "--out", str(tmp_path / "eval")])
    request = evaluate.request_from_args(args)
    eval_profile, differs = evaluation_profile(request)
    assert differs == {} and eval_profile == profile
    eval_record = next(r for r in load_benchmark("synthetic", DATA, split="train") if r.id == record.id)
    settings = RunSettings(benchmark="synthetic", data=str(DATA), model=str(trained), profile=eval_profile)
    bank = open_bank()
    evaluated = build_prompt(EvalItem(key=record.id, record=eval_record), settings, bank)

    # the app: the student's inputs as the page hands them over, through the tutor the app opens
    tutor = serving.open_tutor(serving.ServingConfig(model=str(trained), device="cpu"))
    problem = handlers.make_problem(str(example.image), record.question, record.choices)
    served = tutor.prompt(problem.question, problem.choices, problem.picture, bank).messages

    processor = AutoProcessor.from_pretrained(str(trained))
    texts = {who: rendered(processor, messages) for who, messages in
             (("trainer", example.messages), ("evaluate.py", evaluated["messages"]), ("app", served))}
    assert texts["trainer"] == texts["evaluate.py"] == texts["app"], texts
    system = example.messages[0]["content"][0]["text"]
    assert len(evaluated["theorem_ids"]) == 2 and all(f"- {t} |" in system for t in evaluated["theorem_ids"])
    # and the same pixels: the app's decoded upload and the data's diagram path size to one image
    options = profile.image_options()
    shown = [next(p["image"] for p in m[1]["content"] if p["type"] == "image")
             for m in (example.messages, evaluated["messages"], served)]
    assert len({load_image(image, options).tobytes() for image in shown}) == 1

