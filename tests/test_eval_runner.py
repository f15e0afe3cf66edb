"""The evaluation runner in-process: grading on outputs with known answers, resume after a torn write,
sharding, settings checks, probes and the report. Generation is a scripted function here; the
subprocess tests with the real tiny model are in test_eval_resume.py."""
from __future__ import annotations

import json

import pytest

from training.evaluation.errors import EvaluationError
from training.evaluation.report import summarize, write_summary
from training.evaluation.runner import (CHUNK_BATCHES, EvalItem, RunSettings, evaluate_items, read_predictions,
                                        repair_tail)
from training.records import ProblemRecord

GOOD_STEPS = """Theorem: triangle_angle_sum | Angle sum of a triangle
Cond: A, B and C are the vertices of triangle ABC
Map: angle1 = ∠A = 50°; angle2 = ∠B = 60°; angle3 = ∠C
Exec: angle1 + angle2 + angle3 = 180° => ∠C = 70°
Answer: 70° (A)"""

# The Exec claims 80°, but executing the relation gives 70°: the model's Answer is wrong, the tutor's is right.
WRONG_EXEC = GOOD_STEPS.replace("∠C = 70°", "∠C = 80°").replace("Answer: 70° (A)", "Answer: 80° (B)")


def triangle_record(i: int, split: str = "test_iid") -> ProblemRecord:
    return ProblemRecord(
        id=f"tri-{i}", source="synthetic", split=split,
        question="In triangle ABC, ∠A = 50° and ∠B = 60°. Find ∠C.",
        choices=["70°", "80°", "60°", "110°"], answer="70°", answer_index=0,
        meta={"family": "triangle_angle_sum"},
    )


def settings(profile=None, **overrides) -> RunSettings:
    """Run settings with a profile that lists no theorems; `profile` names changed profile fields."""
    from model.profile import default_profile

    values = dict(benchmark="synthetic", data="fixture", model="scripted", batch_size=2,
                  profile=default_profile().replace(prompt_theorems=0, **(profile or {})))
    values.update(overrides)
    return RunSettings(**values)


class Scripted:
    """Returns a fixed output per record id; counts calls; can 'crash' after a number of problems."""

    def __init__(self, outputs: dict[str, str], crash_after: int | None = None):
        self.outputs, self.crash_after, self.seen = outputs, crash_after, 0

    def __call__(self, prompts):
        if self.crash_after is not None and self.seen + len(prompts) > self.crash_after:
            raise KeyboardInterrupt("simulated crash")
        self.seen += len(prompts)
        return [self.outputs[p["key"].split("#")[0]] for p in prompts]


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    from theorem_bank import open_bank

    # A private file without embeddings: these tests use the bank for lookups and checking, not retrieval.
    return open_bank(tmp_path_factory.mktemp("bank") / "bank.sqlite", dense=False)


def items_for(records, mode="choice"):
    return [EvalItem(key=r.id, record=r, mode=mode) for r in records]


OUTPUTS = {
    "tri-0": GOOD_STEPS,                    # right, verified step
    "tri-1": WRONG_EXEC,                    # wrong answer, wrong step, tutor answer right
    "tri-2": "The answer is C.",            # wrong letter
    "tri-3": "no idea",                     # parse failure
    "tri-4": "Answer: 70°",                 # right value, no steps
    "tri-5": GOOD_STEPS.replace("triangle_angle_sum |", "made_up_theorem |"),  # cites a missing id
    "tri-6": "Answer: 10° (A)",             # right letter, but the value is no choice: credited, flagged
}


def test_grading_on_outputs_with_known_answers(tmp_path, bank):
    records = [triangle_record(i, "test_iid" if i < 3 else "test_surface") for i in range(7)]
    lines = evaluate_items(items_for(records), settings(), tmp_path, Scripted(OUTPUTS), bank=bank, progress=False)
    by_id = {line["id"]: line for line in lines}
    assert [by_id[f"tri-{i}"]["correct"] for i in range(7)] == [True, False, False, False, True, True, True]
    assert [by_id[f"tri-{i}"]["choice_conflict"] for i in range(7)] == [False] * 6 + [True]
    assert by_id["tri-3"]["parse_failure"] and not by_id["tri-2"]["parse_failure"]
    assert by_id["tri-0"]["step_counts"] == {"verified": 1, "wrong": 0, "unverifiable": 0}
    assert by_id["tri-0"]["format_ok"] and not by_id["tri-4"]["format_ok"]
    assert by_id["tri-1"]["step_counts"]["wrong"] == 1
    # the tutor executes the Exec relation: 180 - 50 - 60 = 70 even though the model wrote 80
    assert by_id["tri-1"]["tutor_answer"].replace("°", "").strip() == "70"
    assert by_id["tri-1"]["tutor_correct"] and by_id["tri-0"]["tutor_correct"]
    assert not by_id["tri-4"]["tutor_correct"]  # no steps, no tutor answer
    assert by_id["tri-5"]["cited_existing"] == 0 and by_id["tri-0"]["cited_existing"] == 1

    summary = summarize(lines[:6])
    assert summarize(lines)["choice_conflicts"] == 1 and summary["choice_conflicts"] == 0
    assert summary["n"] == 6 and summary["correct"] == 3
    assert summary["accuracy"] == pytest.approx(0.5)
    assert summary["accuracy_ci95"][0] < 0.5 < summary["accuracy_ci95"][1]
    assert summary["tutor_correct"] == 3  # tri-0, tri-1, tri-5 (the checker still executes an unknown id's relation)
    assert summary["parse_failures"] == 1
    assert summary["by_category"]["split"]["test_iid"]["n"] == 3
    assert summary["by_category"]["split"]["test_iid"]["correct"] == 1
    assert summary["by_category"]["family"]["triangle_angle_sum"]["n"] == 6
    validity = summary["step_validity"]
    assert validity["cited_ids"] == 3 and validity["cited_existing_share"] == pytest.approx(2 / 3)
    assert validity["v1_format_share"] == pytest.approx(3 / 6)


def test_direct_mode_grades_the_value_not_the_letter(tmp_path, bank):
    records = [triangle_record(0), triangle_record(2)]
    outputs = {"tri-0": "Answer: 70", "tri-2": "Answer: (A)"}
    lines = evaluate_items(items_for(records, mode="direct"), settings(mode="direct"), tmp_path, Scripted(outputs),
                           bank=bank, progress=False)
    assert [line["correct"] for line in lines] == [True, False]
    assert all(line["mode"] == "direct" and line["gold_letter"] is None for line in lines)


def strip_timing(lines):
    return [{k: v for k, v in line.items() if k != "latency_s"} for line in lines]


def test_resume_after_crash_and_torn_line_gives_identical_summary(tmp_path, bank):
    records = [triangle_record(i) for i in range(6)]
    chunk = CHUNK_BATCHES  # with batch_size 1 the generator is handed this many problems at a time
    assert chunk < len(records) - 1, "the crash must fall in the second chunk, with a problem after the torn one"
    one = settings(batch_size=1)
    clean = evaluate_items(items_for(records), one, tmp_path / "clean", Scripted(OUTPUTS), bank=bank, progress=False)

    run = tmp_path / "crashed"
    with pytest.raises(KeyboardInterrupt):
        evaluate_items(items_for(records), one, run, Scripted(OUTPUTS, crash_after=chunk), bank=bank, progress=False)
    written, _ = read_predictions(run / "predictions.jsonl")
    assert len(written) == chunk  # the whole first chunk was fsync'd before the crash
    torn = records[chunk].id.encode()
    with (run / "predictions.jsonl").open("ab") as fh:  # a write the kill cut in half
        fh.write(b'{"key": "%s", "id": "%s", "cor' % (torn, torn))
    resumed_gen = Scripted(OUTPUTS)
    resumed = evaluate_items(items_for(records), one, run, resumed_gen, bank=bank, progress=False)
    assert resumed_gen.seen == len(records) - chunk  # only the unfinished problems were generated again
    assert [line["key"] for line in resumed] == [r.id for r in records]
    assert strip_timing(resumed) == strip_timing(clean)
    assert summarize(resumed) == summarize(clean)
    raw = (run / "predictions.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(raw) == len(records) and all(json.loads(line) for line in raw)


def test_repair_tail_cuts_only_the_torn_line(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_bytes(b'{"key": "a"}\n{"key": "b"}\n{"key": "c", "x": [1, ')
    assert repair_tail(path) == len(b'{"key": "c", "x": [1, ')
    assert path.read_bytes() == b'{"key": "a"}\n{"key": "b"}\n'
    assert repair_tail(path) == 0


def test_rerun_with_other_settings_is_refused(tmp_path, bank):
    records = [triangle_record(0)]
    evaluate_items(items_for(records), settings(), tmp_path, Scripted(OUTPUTS), bank=bank, progress=False)
    with pytest.raises(EvaluationError, match=r"profile\.max_new_tokens: 1024 -> 7"):
        evaluate_items(items_for(records), settings(profile={"max_new_tokens": 7}), tmp_path, Scripted(OUTPUTS), bank=bank,
                       progress=False)


def test_two_shards_merge_to_the_single_process_result(tmp_path, bank):
    records = [triangle_record(i) for i in range(6)]
    single = evaluate_items(items_for(records), settings(), tmp_path / "one", Scripted(OUTPUTS), bank=bank, progress=False)
    sharded = tmp_path / "two"
    # rank 1 first: rank 0 waits until every problem has a line, so it must come last in one process
    assert evaluate_items(items_for(records), settings(), sharded, Scripted(OUTPUTS), bank=bank, rank=1, world_size=2,
                          progress=False) is None
    assert (sharded / "predictions.rank1.jsonl").exists()
    merged = evaluate_items(items_for(records), settings(), sharded, Scripted(OUTPUTS), bank=bank, rank=0, world_size=2,
                            progress=False)
    assert strip_timing(merged) == strip_timing(single)
    assert not list(sharded.glob("predictions.rank*.jsonl"))


def test_report_files_and_probe_summary(tmp_path, bank):
    from training.evaluation.probes import shuffle_choices

    records = [triangle_record(i) for i in range(4)]
    items = items_for(records)
    for record in records:
        probed = shuffle_choices(record, seed=0)
        items.append(EvalItem(key=f"{record.id}#shuffle", record=probed, variant="shuffle", mode="choice"))
    # the scripted model always answers letter A: right on the originals, wrong once the gold moves
    outputs = {r.id: "Answer: A" for r in records}
    lines = evaluate_items(items, settings(probe=True), tmp_path, Scripted(outputs), bank=bank, progress=False)
    summary = write_summary(tmp_path, lines, settings(probe=True).to_dict())
    assert summary["n"] == 4 and summary["accuracy"] == 1.0
    probe = summary["probes"]["shuffle"]
    assert probe["n"] == 4 and probe["probed_accuracy"] == 0.0 and probe["flip_share"] == 1.0
    assert probe["flips_to_wrong"] == 4
    report = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "Robustness probes" in report and "| shuffle | 4 |" in report
    assert json.loads((tmp_path / "summary.json").read_text())["settings"]["probe"] is True


def test_formalgeo_gold_theorem_recall_through_bank_aliases(tmp_path, bank):
    record = ProblemRecord(
        id="formalgeo7k-2849", source="formalgeo7k", split="test", answer="70",
        question="As shown in the diagram, ∠A = 50°, ∠B = 60°. Find the measure of ∠C.",
        meta={"origin": "GeoQA", "level": 2, "theorem_seqs": [
            "triangle_property_angle_sum(1,ABC)", "parallel_property_ipsilateral_internal_angle(1,CB,ED)",
            "no_such_formalgeo_theorem(1,AB)"]})
    items = [EvalItem(key=record.id, record=record, mode="direct")]
    lines = evaluate_items(items, settings(benchmark="formalgeo", mode="direct"), tmp_path,
                           Scripted({record.id: GOOD_STEPS}), bank=bank, progress=False)
    gold = lines[0]["gold_theorems"]
    assert "triangle_angle_sum" in gold["bank"] and gold["recalled"] == ["triangle_angle_sum"]
    assert lines[0]["correct"] and lines[0]["categories"] == {"source": "GeoQA", "level": "2"}
    recall = summarize(lines)["formalgeo_gold_theorem_recall"]
    assert recall["gold_theorems"] == 3 and recall["recalled"] == 1
    assert recall["recall"] == pytest.approx(1 / recall["gold_mapped_to_bank"])


def test_value_on_the_answer_line_is_graded_apart_from_its_letter():
    from training.evaluation.scoring import score_output, value_correct

    record = triangle_record(0)  # gold 70°, choice A
    wrong_letter = GOOD_STEPS.replace("Answer: 70° (A)", "Answer: 70° (C)")
    line = score_output(record, wrong_letter, mode="choice")
    assert line["correct"] is False and line["value_correct"] is True and line["choice_conflict"] is True
    line = score_output(record, WRONG_EXEC, mode="choice")
    assert line["value_correct"] is False and line["tutor_correct"] is True
    # lines written before the field existed are graded from their stored answer
    old = {"extracted": {"value": "70° (C)", "letter": "C"}, "gold": "70°"}
    assert value_correct(old) is True and value_correct({**old, "gold": "80°"}) is False


def test_a_corrupt_middle_line_keeps_every_valid_line_after_it(tmp_path, bank, capsys):
    # Issue 16.9: a corrupt line used to end the read, so the lines after it were generated again and then lost.
    records = [triangle_record(i) for i in range(6)]
    clean = evaluate_items(items_for(records), settings(), tmp_path / "clean", Scripted(OUTPUTS), bank=bank, progress=False)
    run = tmp_path / "corrupt"
    evaluate_items(items_for(records), settings(), run, Scripted(OUTPUTS), bank=bank, progress=False)
    path = run / "predictions.jsonl"
    raw = path.read_bytes().splitlines(keepends=True)
    raw[2] = b'{"key": "tri-2", "id": \x00garbage\n'  # a bad block in the middle of the file
    path.write_bytes(b"".join(raw) + b'{"key": "tri-9", "cut')

    assert [line["key"] for line in read_predictions(path)[0]] == ["tri-0", "tri-1", "tri-3", "tri-4", "tri-5"]
    again = Scripted(OUTPUTS)
    resumed = evaluate_items(items_for(records), settings(), run, again, bank=bank, progress=False)
    assert again.seen == 1  # only the problem of the corrupt line is generated again
    assert strip_timing(resumed) == strip_timing(clean)
    assert (run / "predictions.jsonl.rejected").read_bytes() == b'{"key": "tri-2", "id": \x00garbage\n'
    assert "1 corrupt line(s) (3) set aside" in capsys.readouterr().err


def test_scoring_of_one_chunk_overlaps_generation_of_the_next(tmp_path, bank, monkeypatch):
    """Chunk 1's checking waits (bounded) for chunk 2's generation to start: a serial loop would never start it."""
    import threading

    import training.evaluation.runner as runner

    chunk = CHUNK_BATCHES  # with batch_size 1 the generator is handed this many problems at a time
    records = [triangle_record(i) for i in range(chunk + 2)]
    first_chunk = {r.id for r in records[:chunk]}
    second_generation = threading.Event()
    overlapped = []
    real_line = runner.prediction_line

    def slow_line(item, *args, **kwargs):
        if item.key in first_chunk:
            overlapped.append(second_generation.wait(timeout=5))
        return real_line(item, *args, **kwargs)

    scripted = Scripted(OUTPUTS)

    def generate(prompts):
        if scripted.seen >= chunk:
            second_generation.set()
        return scripted(prompts)

    monkeypatch.setattr(runner, "prediction_line", slow_line)
    lines = evaluate_items(items_for(records), settings(batch_size=1), tmp_path / "run", generate, bank=bank,
                           progress=False)
    assert overlapped == [True] * chunk
    assert [line["key"] for line in lines] == [r.id for r in records]


def test_a_scoring_error_stops_the_run_and_keeps_the_lines_before_it(tmp_path, bank, monkeypatch):
    import training.evaluation.runner as runner

    real_line = runner.prediction_line

    def failing_line(item, *args, **kwargs):
        if item.key == failing:
            raise ValueError(f"checker exploded on {failing}")
        return real_line(item, *args, **kwargs)

    monkeypatch.setattr(runner, "prediction_line", failing_line)
    run = tmp_path / "run"
    records = [triangle_record(i) for i in range(6)]
    failing = records[CHUNK_BATCHES].id  # the first problem of the second chunk (batch_size 1)
    with pytest.raises(ValueError, match=failing):
        evaluate_items(items_for(records), settings(batch_size=1), run, Scripted(OUTPUTS), bank=bank, progress=False)
    written, _ = read_predictions(run / "predictions.jsonl")
    assert [line["key"] for line in written] == [r.id for r in records[:CHUNK_BATCHES]]
