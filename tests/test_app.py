"""The app's pieces that need no model: rendering, the CLI, the layout, the example gallery."""
from __future__ import annotations

import pytest

from app import examples, render
from app.__main__ import launch_kwargs, parse_args


class FakeStep:
    def __init__(self, theorem="linear_pair", cond="c", map="m", exec="e", name=""):
        self.theorem, self.cond, self.map, self.exec, self.name = theorem, cond, map, exec, name


class FakeCheck:
    def __init__(self, status, reason="", expected=None):
        self.status, self.reason, self.expected = status, reason, expected


def test_text_escapes_html_and_never_leaves_a_blank_line():
    out = render.text('<script>alert("x")</script>\n\n$x^2$ ∠ABC ∥ ⊥ △ 30°\x00')
    assert "<script>" not in out and "&lt;script&gt;" in out
    assert "\n" not in out and "$x^2$ ∠ABC ∥ ⊥ △ 30°" in out and "\x00" not in out


def test_step_card_badges_say_what_the_checker_found():
    theorem = {"id": "linear_pair", "name": "Angles forming a straight line"}
    ok = render.step_card(1, FakeStep(), FakeCheck("verified"), theorem)
    bad = render.step_card(2, FakeStep(), FakeCheck("wrong", "∠B = 120° is wrong", "130"), theorem)
    unk = render.step_card(3, FakeStep(theorem="nope"), FakeCheck("unverifiable", "unknown theorem id 'nope'"), None)
    assert "✓ verified" in ok and 'href="#thm-linear_pair"' in ok
    assert "✗ wrong" in bad and "the relation gives 130." in bad
    assert "? not checked" in unk and "so its relation is unknown" in unk and "<a " not in unk
    # the theorem's name leads; its bank id is a detail below
    assert ok.index("Angles forming a straight line") < ok.index("bank id: linear_pair")
    for card in (ok, bad, unk):
        assert "\n\n" not in card


def test_streaming_step_is_marked_as_being_written():
    card = render.step_card(1, FakeStep(exec=""), None, None, writing=True)
    assert "✎ writing" in card and "Exec" not in card


def test_anchor_id_is_safe_for_hostile_ids():
    assert render.anchor_id('x" onmouseover="alert(1)') == "thm-x--onmouseover--alert-1-"


def test_answer_names_the_matching_choice():
    html = render.answer_box({"value": "130", "letter": "B", "angle": True, "confidence": "high"}, ["50°", "130°"])
    assert "130°" in html and 'class="tt-choice">B<' in html and "(130°)" in html and "tt-conf-high" in html
    none = render.answer_box({"value": "8*sqrt(2)", "letter": None, "confidence": "medium", "why": "x"}, ["8", "16"])
    assert "none of the choices equals this value" in none and "tt-choice" not in none
    assert "$8 \\sqrt{2}$" in none  # a surd is typeset, not shown as 8*sqrt(2)
    assert "no value" in render.answer_box({"value": None, "confidence": "none"})


def test_theorem_detail_lists_conditions_roles_relation_and_example():
    theorem = {"id": "t", "name": "T", "domain": "geometry", "topic": "angles", "statement": "S",
               "conditions": ["c1"], "roles": {"angle1": {"meaning": "first", "unit": "degree"}},
               "relations": ["angle1 = 5"], "aliases": {"en": ["tee"], "zh": ["丁"]}, "examples": [{"angle1": 5}]}
    html = render.theorem_detail(theorem)
    for piece in ("c1", "angle1", "first", "degree", "angle1 = 5", "丁", "Example"):
        assert piece in html


def test_cli_defaults_are_safe():
    args = parse_args([])
    assert args.host == "127.0.0.1" and args.share is False and args.auth is None
    assert args.concurrency == 1 and args.max_queue >= 1 and args.model is None and args.backend == "local"


def test_launch_arguments_follow_the_cli():
    default = launch_kwargs(parse_args([]))
    assert default["server_name"] == "127.0.0.1" and default["share"] is False and default["auth"] is None
    assert default["max_file_size"] == 10 * 1024 * 1024
    custom = launch_kwargs(parse_args(["--host", "0.0.0.0", "--port", "8001", "--auth", "teacher:s3:cret",
                                       "--share", "--max-upload-mb", "2"]))
    assert custom["auth"] == ("teacher", "s3:cret") and custom["share"] is True and custom["server_port"] == 8001
    assert custom["max_file_size"] == 2 * 1024 * 1024


@pytest.mark.parametrize("argv", [["--auth", "nopassword"], ["--auth", ":x"], ["--concurrency", "0"],
                                  ["--max-upload-mb", "0"], ["--backend", "tgi"]])
def test_cli_rejects_bad_values(argv, capsys):
    with pytest.raises(SystemExit):
        parse_args(argv)
    assert "error" in capsys.readouterr().err


def test_gallery_has_one_example_per_family_with_a_diagram():
    items = examples.load_gallery()
    assert len(items) >= 8
    families = [ex.family for ex in items]
    assert len(set(families)) == len(families)
    for ex in items:
        with open(ex.image, "rb") as fh:
            assert fh.read(4) == b"\x89PNG"
        assert ex.question and ex.answer and ex.solution.startswith("Theorem:")
        assert ex.answer_letter is None or ex.choices["ABCD".index(ex.answer_letter)] == ex.answer


def test_gallery_gold_solutions_check_with_todays_checker():
    """Each shipped example's gold solution parses, every step verifies, and its answer names the right choice."""
    from model.answers import extract_answer
    from model.checker import check_solution
    from model.solution_format import parse
    from theorem_bank import open_bank

    bank = open_bank(dense=False)
    for ex in examples.load_gallery():
        solution = parse(ex.solution)
        assert solution.steps and not solution.problems, ex.family
        assert [c.status for c in check_solution(solution, bank)] == ["verified"] * len(solution.steps), ex.family
        assert extract_answer(ex.solution, ex.choices).letter == ex.answer_letter, ex.family


def test_layout_has_solve_first_then_bank_then_about():
    import gradio as gr

    from app import ui
    from app.handlers import empty_state

    class Tutor:
        identity = {"model": "m", "backend": "b", "device": "cpu", "demo": True, "demo_note": "note"}

        def stream(self, *args):
            yield from ()

    class Bank:
        def all(self):
            return [{"id": "t", "name": "T"}]

        def __len__(self):
            return 1

    blocks = ui.build_ui(Tutor(), Bank(), None, examples.load_gallery())
    tabs = [b.label for b in blocks.blocks.values() if isinstance(b, gr.Tab)]
    assert tabs == ["Solve", "Theorem bank", "About"]
    assert empty_state()["problem"] is None
    api = [d for d in blocks.fns.values() if d.api_name == "solve"]
    assert len(api) == 1
