"""The whitelisted expression grammar: notation, canonical names, relations, limits, and the seed theorems."""
from pathlib import Path

import pytest
import sympy
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from theorem_bank.safe_math import (MathError, canonical_name, name_of, parse_relation, split_relation, symbol_for,
                                    to_sympy)

SEEDS = Path(__file__).resolve().parents[1] / "theorem_bank" / "seeds" / "geometry_core.yaml"
pi, sqrt = sympy.pi, sympy.sqrt
S = sympy.Symbol


@pytest.mark.parametrize("text, expected", [
    ("50°", 50),
    ("50 degrees", 50),
    ("50 degree", 50),
    ("180° - 50°", 130),
    ("12.5", sympy.Rational(25, 2)),
    (".5", sympy.Rational(1, 2)),
    ("3/4", sympy.Rational(3, 4)),
    ("25%", sympy.Rational(1, 4)),
    ("1/50%", 2),
    ("π", pi),
    ("2π", 2 * pi),
    ("2pi", 2 * pi),
    ("6*pi", 6 * pi),
    ("√3", sqrt(3)),
    ("2√3", 2 * sqrt(3)),
    ("√3/2", sqrt(3) / 2),
    ("√(16)", 4),
    ("sqrt(2)*sqrt(8)", 4),
    ("3×4", 12),
    ("3·4", 12),
    ("12÷4", 3),
    ("2^10", 1024),
    ("2**10", 1024),
    ("2^3^2", 512),
    ("-2^2", -4),
    ("2^-1", sympy.Rational(1, 2)),
    ("3(1+2)", 9),
    ("(1+2)(3+4)", 21),
    ("5!", 120),
    ("sin(30)", sympy.Rational(1, 2)),
    ("sin(30°)", sympy.Rational(1, 2)),
    ("cos(60°)", sympy.Rational(1, 2)),
    ("tan(45)", 1),
    ("sin(pi/6)", sympy.Rational(1, 2)),
    ("asin(1/2)", 30),
    ("arctan(1)", 45),
    ("x²", S("x") ** 2),
    ("−5", -5),
    ("１２＋３", 15),
    ("\\frac{3}{2}", sympy.Rational(3, 2)),
    ("\\frac{√{3}}{2}", sqrt(3) / 2),
    ("2\\sqrt{3}", 2 * sqrt(3)),
    ("\\dfrac{\\pi}{4}", pi / 4),
    ("90^\\circ", 90),
    ("3√{3}", 3 * sqrt(3)),
    ("abs(-3)", 3),
    ("angle1 + angle2", S("angle1") + S("angle2")),
    ("half_d1^2", S("half_d1") ** 2),
    ("∠ABC + ∠CBA", 2 * S("∠ABC")),
    ("∠1 + ∠2", S("∠1") + S("∠2")),
    ("angle ABC", S("∠ABC")),
    ("AB + BA", 2 * S("AB")),
    ("2AB", 2 * S("AB")),
    ("2 pi r", 2 * pi * S("r")),
])
def test_notation(text, expected):
    assert sympy.simplify(to_sympy(text) - expected) == 0


@pytest.mark.parametrize("a, b", [("∠ABC", "∠CBA"), ("AB", "BA"), ("∠ A B C", "∠CBA"), ("⌒BA", "⌒AB"),
                                  ("∠A1B1C1", "∠C1B1A1")])
def test_canonical_names_agree(a, b):
    assert symbol_for(a) == symbol_for(b)
    assert canonical_name(a) == canonical_name(b)


@pytest.mark.parametrize("a, b", [("∠ABC", "∠BAC"), ("∠1", "∠2"), ("AB", "AC"), ("angle1", "angle2")])
def test_canonical_names_differ(a, b):
    assert symbol_for(a) != symbol_for(b)


def test_role_names_stay_as_written():
    assert symbol_for("angle1") == S("angle1")
    assert symbol_for("half_other").name == "half_other"


def test_values_are_substituted_while_building():
    assert to_sympy("angle1 + angle2", {"angle1": 50, "angle2": "60°"}) == 110
    assert to_sympy("∠CBA * 2", {"∠ABC": 30}) == 60
    assert to_sympy("x + 1", {S("x"): sympy.Rational(1, 2)}) == sympy.Rational(3, 2)


def test_trig_units_are_decided_by_the_written_argument_not_the_substituted_value():
    # FormalGeo pid 5842: ∠CAB = atan(1/3) is built as 180*atan(1/3)/pi degrees; sin(angle_b) must still read it
    # in degrees (it used to see the pi of the value and take radians, giving AB ≈ -4.96 instead of 2*sqrt(10))
    assert sympy.simplify(to_sympy("sin(angle_b)", {"angle_b": "atan(1/3)"}) - sqrt(10) / 10) == 0
    assert sympy.simplify(to_sympy("tan(atan(1/3))") - sympy.Rational(1, 3)) == 0
    assert sympy.simplify(to_sympy("2 / sin(angle_b)", {"angle_b": "atan(1/3)"}) - 2 * sqrt(10)) == 0
    # a value is a number of degrees even when it contains pi; the text "pi" alone means radians
    assert to_sympy("cos(x)", {"x": pi}) == sympy.cos(pi ** 2 / 180)
    assert to_sympy("sin(x * pi / 180)", {"x": 30}) == sympy.Rational(1, 2)
    assert to_sympy("sin(π/6) + cos(60)") == 1
    assert to_sympy("tan(∠A)", {"∠A": 45}) == 1


@pytest.mark.parametrize("text, name", [("∠CBA", "∠ABC"), (" BA ", "AB"), ("angle1", "angle1"), ("(AB)", "AB"),
                                        ("+x", "x"), ("1*x", "x"), ("x°", "x"), ("2", None), ("pi", None),
                                        ("a + b", None), ("-x", None), ("sin", None), ("sin(x", None), ("", None)])
def test_name_of_agrees_with_building_the_expression(text, name):
    assert name_of(text) == name
    try:
        built = to_sympy(text)
    except MathError:
        built = None
    assert (built.name if isinstance(built, sympy.Symbol) else None) == name


def test_relations_split_and_stay_unevaluated():
    eqs = parse_relation("a = b = c")
    assert eqs == [sympy.Eq(S("a"), S("b"), evaluate=False), sympy.Eq(S("b"), S("c"), evaluate=False)]
    (eq,) = parse_relation("2 = 2")
    assert isinstance(eq, sympy.Eq) and eq.lhs == 2
    (eq,) = parse_relation("angle1 + angle2 = 180°", {"angle1": 50})
    assert eq.lhs == S("angle2") + 50 and eq.rhs == 180
    assert split_relation("a => b = c") == ["a => b ", " c"]


@pytest.mark.parametrize("text, fragment", [
    ("", "empty"),
    ("1 +", "malformed"),
    ("(1 + 2", "unclosed"),
    ("1 + 2)", "unmatched"),
    ("a < b", "inequality"),
    ("a = b", "relation"),
    ("f(x)", "unknown function"),
    ("sin(1, 2)", "argument"),
    ("2 3", "two numbers"),
    ("1 / 0", "division by zero"),
    ("9**9**9**9", "exponent"),
    ("2^100000", "exponent"),
    ("factorial(10**9)", "factorial"),
    ("(1.5)!", "factorial"),
    ("1" * 41, "digits"),
    ("(" * 50 + "1" + ")" * 50, "nested"),
    ("x" * 3000, "characters"),
    ("+".join(["1"] * 500), "tokens"),
    ("\\sqrt[3]{8}", "n-th roots"),
    ("\\foo{1}", "unsupported LaTeX"),
    ("lambda", "not allowed"),
    ("__class__", "not allowed"),
    ("a.b", "unexpected character"),
    ("a[0]", "unknown function"),
    ("'x'", "unexpected character"),
    ("√", "needs an argument"),
])
def test_errors_say_what_is_wrong(text, fragment):
    with pytest.raises(MathError, match=fragment):
        to_sympy(text)


def test_parse_relation_requires_an_equals_sign():
    with pytest.raises(MathError, match="no '='"):
        parse_relation("a + b")
    with pytest.raises(MathError, match="side 2"):
        parse_relation("a = ")


def _seed_theorems():
    return yaml.safe_load(SEEDS.read_text(encoding="utf-8"))


def test_every_seed_relation_parses():
    theorems = _seed_theorems()
    assert len(theorems) >= 30
    for theorem in theorems:
        roles = {S(name) for name in theorem["roles"]}
        for relation in theorem["relations"]:
            eqs = parse_relation(relation)
            used = set().union(*(eq.free_symbols for eq in eqs))
            assert used <= roles, f"{theorem['id']}: {relation!r} uses {used - roles} which are not roles"


def test_every_seed_example_satisfies_its_relations():
    for theorem in _seed_theorems():
        for example in theorem["examples"]:
            values = {role: to_sympy(str(value)) for role, value in example.items()}
            for relation in theorem["relations"]:
                for eq in parse_relation(relation, values):
                    assert eq.free_symbols == set(), f"{theorem['id']}: example does not cover {eq.free_symbols}"
                    assert sympy.simplify(eq.lhs - eq.rhs) == 0, f"{theorem['id']}: {relation} fails on {example}"


_GRAMMAR_SOUP = "0123456789+-*/^()=°%!√πxyab.∠ABC sincotaqrf_,\\{}[]'\"<>|&@#$:;~`"


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=_GRAMMAR_SOUP, max_size=40))
def test_only_math_errors_escape_on_grammar_soup(text):
    try:
        result = to_sympy(text)
    except MathError:
        return
    assert isinstance(result, sympy.Basic)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=60))
def test_only_math_errors_escape_on_arbitrary_text(text):
    for reader in (to_sympy, parse_relation):
        try:
            reader(text)
        except MathError:
            pass
