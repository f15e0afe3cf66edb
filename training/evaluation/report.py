"""From predictions.jsonl to summary.json and report.md, and the paired comparison of two runs.

Everything here is a function of the prediction lines (and the run settings), never of timing, so
resumed, sharded and uninterrupted runs of the same command produce identical summaries.
"""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable, Sequence

from training.evaluation.errors import EvaluationError
from training.evaluation.scoring import value_correct
from training.evaluation.stats import mcnemar_exact, paired_comparison, wilson_interval

SUMMARY_VERSION = 1


def _accuracy_block(lines: Sequence[dict], field: str = "correct") -> dict[str, Any]:
    n = len(lines)
    correct = sum(1 for line in lines if line.get(field))
    low, high = wilson_interval(correct, n)
    return {"n": n, "correct": correct, "accuracy": correct / n if n else None, "ci95": [low, high]}


def _round(obj: Any, digits: int = 10) -> Any:
    """Round floats to `digits` significant digits: summaries stay short and compare equal across platforms,
    while tiny p-values keep their precision."""
    if isinstance(obj, float):
        return float(f"{obj:.{digits}g}")
    if isinstance(obj, dict):
        return {k: _round(v, digits) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_round(v, digits) for v in obj]
    return obj


def summarize(lines: Sequence[dict], settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """The summary of one run: accuracy, categories, step validity, gold-theorem recall, probes."""
    original = [line for line in lines if line.get("variant", "original") == "original"]
    answer = _accuracy_block(original)
    tutor = _accuracy_block(original, "tutor_correct")
    summary: dict[str, Any] = {
        "summary_version": SUMMARY_VERSION,
        "benchmark": (settings or {}).get("benchmark") or (original[0]["benchmark"] if original else None),
        "n": answer["n"],
        "accuracy": answer["accuracy"],
        "accuracy_ci95": answer["ci95"],
        "correct": answer["correct"],
        # The tutor's answer: the value the checker derives by executing the chain of Exec relations (last step).
        "tutor_accuracy": tutor["accuracy"],
        "tutor_accuracy_ci95": tutor["ci95"],
        "tutor_correct": tutor["correct"],
        # the Answer line's value graded alone (choice mode grades its letter)
        "value_accuracy": (sum(value_correct(line) for line in original) / len(original)) if original else None,
        "parse_failures": sum(1 for line in original if line.get("parse_failure")),
        # choice mode: the letter given contradicts the value written next to it (graded by the letter)
        "choice_conflicts": sum(1 for line in original if line.get("choice_conflict")),
        "with_image": sum(1 for line in original if line.get("has_image")),
        "modes": sorted({line.get("mode") for line in original if line.get("mode")}),
        "by_category": by_category(original),
        "step_validity": step_validity(original),
    }
    recall = gold_theorem_recall(original)
    if recall is not None:
        summary["formalgeo_gold_theorem_recall"] = recall
    probes = probe_summary(lines)
    if probes:
        summary["probes"] = probes
    errors = sum(1 for line in original if line.get("check_error"))
    if errors:
        summary["checker_errors"] = errors
    if settings is not None:
        summary["settings"] = {k: settings.get(k) for k in (
            "benchmark", "data", "data_fingerprint", "model", "adapter", "backend", "mode", "profile", "limit", "probe",
            "probe_seed")}
    return _round(summary)


def by_category(lines: Sequence[dict]) -> dict[str, dict[str, dict]]:
    groups: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for line in lines:
        for axis, value in (line.get("categories") or {}).items():
            groups[axis][str(value)].append(line)
    result = {}
    for axis, values in sorted(groups.items()):
        result[axis] = {}
        for value, members in sorted(values.items()):
            block = _accuracy_block(members)
            block["tutor_accuracy"] = _accuracy_block(members, "tutor_correct")["accuracy"]
            result[axis][value] = block
    return result


def step_validity(lines: Sequence[dict]) -> dict[str, Any]:
    n = len(lines)
    counts = {"verified": 0, "wrong": 0, "unverifiable": 0}
    for line in lines:
        for status, count in (line.get("step_counts") or {}).items():
            counts[status] = counts.get(status, 0) + count
    steps = sum(counts.values())
    cited = sum(len(line.get("cited") or []) for line in lines)
    existing = sum(line.get("cited_existing", 0) for line in lines)
    return {
        "v1_format_share": sum(1 for line in lines if line.get("format_ok")) / n if n else None,
        "outputs_with_steps": sum(1 for line in lines if line.get("steps")),
        "exec_steps": steps,
        **{f"{status}_share": counts[status] / steps if steps else None for status in ("verified", "wrong", "unverifiable")},
        "cited_ids": cited,
        "cited_existing_share": existing / cited if cited else None,
    }


def gold_theorem_recall(lines: Sequence[dict]) -> dict[str, Any] | None:
    """Recall of the FormalGeo7k gold theorems (mapped to bank ids through their aliases) among cited ids."""
    with_gold = [line for line in lines if line.get("gold_theorems")]
    if not with_gold:
        return None
    gold_names = sum(len(line["gold_theorems"]["formalgeo"]) for line in with_gold)
    mapped = sum(len(line["gold_theorems"]["bank"]) for line in with_gold)
    recalled = sum(len(line["gold_theorems"]["recalled"]) for line in with_gold)
    return {
        "problems": len(with_gold),
        "gold_theorems": gold_names,
        "gold_mapped_to_bank": mapped,
        "mapped_share": mapped / gold_names if gold_names else None,
        "recalled": recalled,
        # micro-averaged over all mapped gold theorems; unmapped ones cannot be cited by bank id
        "recall": recalled / mapped if mapped else None,
    }


def probe_summary(lines: Sequence[dict]) -> dict[str, dict]:
    """Per probe: accuracy on the originals versus the probed variants of the same problems, and flips."""
    original = {line["id"]: line for line in lines if line.get("variant", "original") == "original"}
    variants: dict[str, list[dict]] = defaultdict(list)
    for line in lines:
        if line.get("variant", "original") != "original" and line["id"] in original:
            variants[line["variant"]].append(line)
    result = {}
    for variant, probed in sorted(variants.items()):
        pairs = [(original[line["id"]]["correct"], line["correct"]) for line in probed]
        n = len(pairs)
        to_wrong = sum(1 for a, b in pairs if a and not b)
        to_right = sum(1 for a, b in pairs if b and not a)
        result[variant] = {
            "n": n,
            "original_accuracy": sum(a for a, _ in pairs) / n,
            "probed_accuracy": sum(b for _, b in pairs) / n,
            "flip_share": (to_wrong + to_right) / n,
            "flips_to_wrong": to_wrong,
            "flips_to_right": to_right,
            "mcnemar_p": mcnemar_exact(to_wrong, to_right),
        }
    return result


# --------------------------------------------------------------------------- markdown

def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def render_report(summary: dict[str, Any]) -> str:
    s = summary
    low, high = s["accuracy_ci95"]
    out = [f"# Evaluation: {s.get('benchmark')}", ""]
    settings = s.get("settings") or {}
    if settings:
        out += ["| setting | value |", "| --- | --- |"]
        out += [f"| {k} | `{json.dumps(v, ensure_ascii=False)}` |" for k, v in settings.items()]
        out.append("")
    tl, th = s["tutor_accuracy_ci95"]
    out += [
        f"- problems: **{s['n']}** ({s['with_image']} with a diagram); modes: {', '.join(s['modes']) or '–'}",
        f"- answer accuracy (model's Answer line): **{_pct(s['accuracy'])}** ({s['correct']}/{s['n']}), 95% Wilson CI {_pct(low)}–{_pct(high)}",
        f"- tutor accuracy (checker-executed chain of Exec relations): **{_pct(s['tutor_accuracy'])}** ({s['tutor_correct']}/{s['n']}), 95% CI {_pct(tl)}–{_pct(th)}",
        f"- value on the Answer line, graded alone (its letter ignored): {_pct(s.get('value_accuracy'))}",
        f"- parse failures (no answer found): {s['parse_failures']}; choice answers whose value contradicts "
        f"their letter (graded by the letter): {s['choice_conflicts']}",
        "",
        "## Step validity",
        "",
        "| measure | value |",
        "| --- | --- |",
    ]
    sv = s["step_validity"]
    out += [
        f"| outputs in the v1 format | {_pct(sv['v1_format_share'])} |",
        f"| outputs with at least one step | {sv['outputs_with_steps']} |",
        f"| Exec steps checked | {sv['exec_steps']} |",
        f"| verified / wrong / unverifiable | {_pct(sv['verified_share'])} / {_pct(sv['wrong_share'])} / {_pct(sv['unverifiable_share'])} |",
        f"| cited theorem ids that exist | {_pct(sv['cited_existing_share'])} of {sv['cited_ids']} |",
        "",
    ]
    if "formalgeo_gold_theorem_recall" in s:
        r = s["formalgeo_gold_theorem_recall"]
        out += ["## FormalGeo7k gold theorems", "",
                f"Recall of gold theorems among cited ids: **{_pct(r['recall'])}** ({r['recalled']}/{r['gold_mapped_to_bank']} gold "
                f"theorems that map to a bank id; {_pct(r['mapped_share'])} of {r['gold_theorems']} gold theorems map).", ""]
    for axis, values in s["by_category"].items():
        out += [f"## By {axis}", "", f"| {axis} | n | accuracy | 95% CI | tutor accuracy |", "| --- | ---: | ---: | --- | ---: |"]
        for value, block in values.items():
            lo, hi = block["ci95"]
            out.append(f"| {value} | {block['n']} | {_pct(block['accuracy'])} | {_pct(lo)}–{_pct(hi)} | {_pct(block['tutor_accuracy'])} |")
        out.append("")
    if s.get("probes"):
        out += ["## Robustness probes", "", "| probe | n | original | probed | flip share | → wrong | → right | McNemar p |",
                "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for variant, p in s["probes"].items():
            out.append(f"| {variant} | {p['n']} | {_pct(p['original_accuracy'])} | {_pct(p['probed_accuracy'])} | "
                       f"{_pct(p['flip_share'])} | {p['flips_to_wrong']} | {p['flips_to_right']} | {p['mcnemar_p']:.3g} |")
        out.append("")
    return "\n".join(out)


def _write_atomic(path: Path, text: str) -> None:
    # a kill mid-write must not leave a half summary that looks finished
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def write_summary(out_dir: str | Path, lines: Sequence[dict], settings: dict[str, Any] | None) -> dict[str, Any]:
    out_dir = Path(out_dir)
    summary = summarize(lines, settings)
    _write_atomic(out_dir / "report.md", render_report(summary))
    _write_atomic(out_dir / "summary.json", json.dumps(summary, indent=2, ensure_ascii=False, sort_keys=True) + "\n")
    latencies = [line["latency_s"] for line in lines if "latency_s" in line]
    if latencies:  # timing lives apart from summary.json, which must not depend on it
        timing = {"problems": len(latencies), "mean_latency_s": sum(latencies) / len(latencies),
                  "total_generation_s": sum(latencies)}
        (out_dir / "timing.json").write_text(json.dumps(timing, indent=2) + "\n", encoding="utf-8")
    return summary


# --------------------------------------------------------------------------- compare

def load_run(path: str | Path) -> list[dict]:
    from training.evaluation.runner import PREDICTIONS, read_predictions

    path = Path(path)
    file = path / PREDICTIONS if path.is_dir() else path
    if not file.exists():
        raise EvaluationError(f"no predictions at {file}; give a run folder written by `evaluate.py run` or its predictions.jsonl")
    lines, _ = read_predictions(file)
    return lines


def compare_runs(lines_a: Iterable[dict], lines_b: Iterable[dict], *, n_resamples: int = 10_000, seed: int = 0,
                 field: str = "correct") -> dict[str, Any]:
    """Paired comparison on the problems (keys) both runs answered."""
    a = {line["key"]: line for line in lines_a}
    b = {line["key"]: line for line in lines_b}
    common = [key for key in a if key in b]
    flags_a = [bool(a[key].get(field)) for key in common]
    flags_b = [bool(b[key].get(field)) for key in common]
    result = paired_comparison(flags_a, flags_b, n_resamples=n_resamples, seed=seed)
    result.update({
        "field": field,
        "only_in_a": len(a) - len(common),
        "only_in_b": len(b) - len(common),
        "a_right_b_wrong": [key for key, x, y in zip(common, flags_a, flags_b) if x and not y],
        "b_right_a_wrong": [key for key, x, y in zip(common, flags_a, flags_b) if y and not x],
    })
    return _round(result)


def render_comparison(result: dict[str, Any], name_a: str = "A", name_b: str = "B", list_limit: int = 20) -> str:
    lo, hi = result["difference_ci95"]
    lines = [
        f"# {name_a} vs {name_b} ({result['n']} common problems, graded by `{result['field']}`)",
        "",
        "| | accuracy |", "| --- | ---: |",
        f"| A: {name_a} | {_pct(result['accuracy_a'])} |",
        f"| B: {name_b} | {_pct(result['accuracy_b'])} |",
        "",
        f"- difference A − B: **{100 * result['difference']:+.1f} points**, paired bootstrap 95% CI "
        f"[{100 * lo:+.1f}, {100 * hi:+.1f}] ({result['bootstrap']['n_resamples']} resamples, seed {result['bootstrap']['seed']})",
        f"- discordant pairs: A right/B wrong {result['only_a']}, B right/A wrong {result['only_b']}; "
        f"McNemar exact p = {result['mcnemar_p']:.4g}",
    ]
    if result["only_in_a"] or result["only_in_b"]:
        lines.append(f"- not paired: {result['only_in_a']} problems only in A, {result['only_in_b']} only in B")
    for title, keys in (("A right, B wrong", result["a_right_b_wrong"]), ("B right, A wrong", result["b_right_a_wrong"])):
        shown = ", ".join(keys[:list_limit]) + (f", … ({len(keys) - list_limit} more)" if len(keys) > list_limit else "")
        lines.append(f"- {title}: {shown or '–'}")
    return "\n".join(lines) + "\n"
