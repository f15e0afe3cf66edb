"""Render and parse of the v1 solution format: round trip, totality, and what real models write."""
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from model.solution_format import Solution, Step, parse, render

DESIGN_EXAMPLE = """\
Theorem: parallel_corresponding_angles | Corresponding angles of parallel lines
Cond: AB ∥ CD; EF crosses AB at G and CD at H
Map: angle1 = ∠EGB = 50°; angle2 = ∠GHD
Exec: angle2 = angle1 => ∠GHD = 50°
Theorem: linear_pair | Angles forming a straight line
Cond: ∠GHD and ∠GHC lie on line CD with common side GH
Map: angle1 = ∠GHD = 50°; angle2 = ∠GHC
Exec: angle1 + angle2 = 180° => ∠GHC = 130°
Answer: 130° (B)"""


def test_design_example_parses_exactly():
    solution = parse(DESIGN_EXAMPLE)
    assert solution.problems == []
    assert [s.theorem for s in solution.steps] == ["parallel_corresponding_angles", "linear_pair"]
    assert solution.steps[1] == Step("linear_pair", "Angles forming a straight line",
                                     "∠GHD and ∠GHC lie on line CD with common side GH",
                                     "angle1 = ∠GHD = 50°; angle2 = ∠GHC", "angle1 + angle2 = 180° => ∠GHC = 130°")
    assert solution.answer == "130° (B)"
    assert render(solution) == DESIGN_EXAMPLE


def test_record_conversion():
    step = Step.from_record({"theorem": "vertical_angles", "cond": "c", "map": "m", "exec": "e"}, name="Vertical angles")
    assert step.name == "Vertical angles" and step.exec == "e"
    assert step.to_record() == {"theorem": "vertical_angles", "cond": "c", "map": "m", "exec": "e"}
    assert Step.from_record({"theorem": "x"}).map == ""


def test_render_keeps_fields_on_one_line():
    text = render(Solution(steps=[Step("t", cond="a\nb", exec="x = 1\r")], answer="5\n"))
    assert text == "Theorem: t\nCond: a b\nExec: x = 1\nAnswer: 5"


@pytest.mark.parametrize("text", [
    "**Theorem:** linear_pair | Angles\n**Map:** angle1 = ∠A = 50°\n**Exec:** angle1 + angle2 = 180 => ∠B = 130°\n**Answer:** 130°",
    "- Theorem: linear_pair | Angles\n- Map: angle1 = ∠A = 50°\n- Exec: angle1 + angle2 = 180 => ∠B = 130°\n- Answer: 130°",
    "1. Theorem：linear_pair | Angles\n2. Map：angle1 = ∠A = 50°\n3. Exec：angle1 + angle2 = 180 => ∠B = 130°\nAnswer：130°",
    "### Step 1: Theorem: linear_pair | Angles\n  map:   angle1 = ∠A = 50°  \n  EXEC: angle1 + angle2 = 180 => ∠B = 130°\n**Answer: 130°**",
    "* **Theorem**: linear_pair | Angles\n* **Map**: angle1 = ∠A = 50°\n* **Exec**: angle1 + angle2 = 180 => ∠B = 130°\nFinal Answer: 130°",
])
def test_markdown_decorations_are_tolerated(text):
    solution = parse(text)
    assert [s.theorem for s in solution.steps] == ["linear_pair"]
    step = solution.steps[0]
    assert step.name == "Angles"
    assert step.map == "angle1 = ∠A = 50°"
    assert step.exec == "angle1 + angle2 = 180 => ∠B = 130°"
    assert solution.answer == "130°"


def test_missing_map_and_name_are_tolerated_and_noted():
    solution = parse("Theorem: vertical_angles\nExec: angle2 = angle1 => ∠2 = 40°\nAnswer: 40°")
    assert solution.steps == [Step("vertical_angles", exec="angle2 = angle1 => ∠2 = 40°")]
    assert any("no Map" in p for p in solution.problems)


def test_rambling_is_kept_as_preamble_and_trailer():
    text = "Let me think step by step.\n\nTheorem: vertical_angles\nExec: a => b = 1\nAnswer: 1\nThat is all. Answer follows."
    solution = parse(text)
    assert solution.preamble == "Let me think step by step.\n"
    assert solution.trailer == "That is all. Answer follows."
    assert render(solution) == text


def test_stray_lines_between_steps_are_reported():
    solution = parse("Theorem: a\nso we note something\nExec: x => y = 1\nAnswer: 1")
    assert any("line 2" in p and "ignored" in p for p in solution.problems)
    assert solution.steps[0].exec == "x => y = 1"


def test_unknown_theorem_ids_are_kept_and_flagged_with_a_bank():
    class Bank:
        def get(self, theorem_id):
            return {"id": theorem_id} if theorem_id == "linear_pair" else None

    solution = parse("Theorem: made_up_theorem\nExec: a => b = 1\nAnswer: 1", bank=Bank())
    assert solution.steps[0].theorem == "made_up_theorem"
    assert any("unknown theorem id 'made_up_theorem'" in p for p in solution.problems)
    assert not any("unknown" in p for p in parse("Theorem: linear_pair\nMap: m\nExec: e\nAnswer: 1", bank=Bank()).problems)


ODD_INPUTS = {"empty": "", "blank": "   ", "binary": "\x00\xff garbage", "bare answer": "Answer:", "bare theorem": "Theorem:",
              "lonely exec": "Exec: x", "name only": "Theorem: | name", "map twice": "Map: a = b\nMap: c",
              "1 MB line": "x" * 1_000_000, "400 kB of steps": "Exec: 1 + 1 => a = 2\n" * 20_000,
              "step after answer": "Theorem: a\nAnswer: 1\nTheorem: b"}


@pytest.mark.parametrize("text", list(ODD_INPUTS.values()), ids=list(ODD_INPUTS))
def test_parse_is_total_on_odd_inputs(text):
    solution = parse(text)
    assert isinstance(solution, Solution)
    assert len(solution.problems) <= 51


def test_parse_accepts_non_text():
    assert parse(None).problems == ["no text"]
    assert parse(b"Answer: 5").answer == "5"


_field = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), max_size=30).map(str.strip)
_theorem_id = st.from_regex(r"[a-z][a-z0-9_]{0,20}", fullmatch=True)
_name = _field.filter(lambda s: "|" not in s)
_step = st.builds(Step, theorem=_theorem_id, name=_name, cond=_field, map=_field, exec=_field)
_free_line = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\n"), max_size=40).filter(
    lambda line: (p := parse(line)).answer is None and not p.steps)   # free text: not a keyword line
_free_text = st.lists(_free_line, max_size=3).map("\n".join)


@st.composite
def solutions(draw):
    steps = draw(st.lists(_step, min_size=1, max_size=4))
    answer = draw(st.one_of(st.none(), _field))
    return Solution(steps=steps, answer=answer, preamble=draw(_free_text), trailer=draw(_free_text))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(solutions())
def test_round_trip_of_well_formed_text(solution):
    text = render(solution)
    parsed = parse(text)
    assert render(parsed) == text
    assert parsed.steps == solution.steps
    assert parsed.answer == solution.answer
    assert (parsed.preamble, parsed.trailer) == (solution.preamble, solution.trailer)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400))
def test_parser_is_total_on_arbitrary_text(text):
    solution = parse(text)
    assert isinstance(solution, Solution)
    render(solution)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(solutions(), st.data())
def test_truncated_prefix_never_raises(solution, data):
    text = render(solution)
    cut = data.draw(st.integers(min_value=0, max_value=len(text)))
    prefix = parse(text[:cut])
    assert isinstance(prefix, Solution)
    assert len(prefix.steps) <= len(solution.steps)


def test_every_prefix_of_the_design_example_parses():
    for cut in range(len(DESIGN_EXAMPLE) + 1):
        solution = parse(DESIGN_EXAMPLE[:cut])
        assert len(solution.steps) <= 2
