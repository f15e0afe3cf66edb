"""The theorem families of the synthetic curriculum: each builds a problem with its gold steps.

A family is tied to core theorems (theorem_bank/seeds/geometry_core.yaml) and offers chains of
1-3 steps in which a later step uses an earlier result. `build(rng, pick, chain)` returns a `Draft`
written with canonical point letters (A-H, O centre, P outside point); all other text is lowercase
so the generator can relabel points with a plain character translation.
"""
from __future__ import annotations

import math
from fractions import Fraction
from dataclasses import dataclass
from typing import Callable

from .core import Draft, Figure, Num, Picker, along, polar, triangle

TAS, EXT, ISO, EQ = "triangle_angle_sum", "triangle_exterior_angle", "isosceles_base_angles", "equilateral_triangle_angles"
PYTH, CONV = "pythagorean_theorem", "pythagorean_converse"
CORR, ALT, CO = "parallel_corresponding_angles", "parallel_alternate_interior_angles", "parallel_co_interior_angles"
VERT, LP, AROUND = "vertical_angles", "linear_pair", "angles_around_point"
INSC, ARC, SEMI = "inscribed_angle_theorem", "central_angle_arc", "angle_in_semicircle"
TPERP, TSEG, CYC = "tangent_perpendicular_radius", "tangent_segments_equal", "cyclic_quadrilateral_opposite_angles"
SIM, MID = "similar_triangles_side_ratio", "triangle_midline"
POPP, PCONS, PSIDE = "parallelogram_opposite_angles", "parallelogram_consecutive_angles", "parallelogram_opposite_sides"
RECT, RHOMB = "rectangle_diagonals_equal", "rhombus_diagonals_perpendicular"
POLY, REG = "polygon_interior_angle_sum", "regular_polygon_interior_angle"
CIRC, AREA, ARCLEN, SECTOR = "circle_circumference", "circle_area", "arc_length", "sector_area"
SIN, COS, TAN = "right_triangle_sine", "right_triangle_cosine", "right_triangle_tangent"

TRIPLES = ((3, 4, 5), (5, 12, 13), (8, 15, 17), (6, 8, 10), (7, 24, 25), (9, 12, 15))


@dataclass(frozen=True)
class Family:
    name: str
    chains: tuple[tuple[str, ...], ...]      # chains seen in train (and test_iid/surface/numbers)
    held_out: tuple[tuple[str, ...], ...]    # chains only in test_compose
    build: Callable[..., Draft]


def deg(x) -> Num:
    return Num(x)


def new_draft(family, given, ask, answer, figure, chain, unit="°", mistakes=()) -> Draft:
    return Draft(family=family, given=given, ask=ask, answer=Num(answer) if not isinstance(answer, Num) else answer,
                 unit=unit, figure=figure, chain=tuple(chain),
                 mistakes=[m if isinstance(m, Num) else Num(m) for m in mistakes])


def tri_figure(a, b, extend_c=False, mark=("A", "B")):
    A, B, C = triangle(a, b)
    fig = Figure(pts={"A": A, "B": B, "C": C})
    fig.poly("A", "B", "C")
    if extend_c:
        fig.pts["D"] = along(B, C, 1.35)
        fig.segs.append(("C", "D"))
    arcs = {"A": ("A", "B", "C"), "B": ("B", "A", "C"), "C": ("C", "A", "B"), "ACD": ("C", "A", "D")}
    for key in mark:
        fig.arcs.append((*arcs[key], 1))
    return fig


# ------------------------------------------------------------------------------------ triangles

def triangle_sum(rng, pick: Picker, chain):
    f = "triangle_angle_sum"
    if chain == (LP, TAS):
        a = pick.int("A", (30, 80), (95, 130))
        b = pick.int("B", (25, min(70, 165 - a)))
        d = new_draft(f, f"in △ABC, D lies on the extension of BC, ∠A = {a}°, ∠ACD = {a + b}°", "∠B", b,
              tri_figure(a, b, True, ("A", "ACD")), chain, mistakes=[180 - b, a + b - 90, 180 - a - b])
        c = d.step(LP, "∠ACB and ∠ACD form a line", [("angle1", "∠ACD", deg(a + b)), ("angle2", "∠ACB", None)],
                   ("∠ACB", deg(180 - a - b)))
        d.step(TAS, "△ABC", [("angle1", "∠A", deg(a)), ("angle2", "∠ACB", c), ("angle3", "∠B", None)], ("∠B", deg(b)))
        return d
    a = pick.int("A", (30, 80), (95, 130))
    b = pick.int("B", (25, min(70, 165 - a)))
    c = 180 - a - b
    if chain == (TAS,):
        d = new_draft(f, f"in △ABC, ∠A = {a}°, ∠B = {b}°", "∠C", c, tri_figure(a, b), chain,
              mistakes=[a + b, 180 - a, 180 - b, 90 - c if c < 90 else c - 90])
        d.step(TAS, "△ABC", [("angle1", "∠A", deg(a)), ("angle2", "∠B", deg(b)), ("angle3", "∠C", None)], ("∠C", deg(c)))
        return d
    d = new_draft(f, f"in △ABC, ∠A = {a}°, ∠B = {b}°, D lies on the extension of BC", "∠ACD", a + b,
          tri_figure(a, b, True), chain, mistakes=[c, 180 - a, 180 - b])
    v = d.step(TAS, "△ABC", [("angle1", "∠A", deg(a)), ("angle2", "∠B", deg(b)), ("angle3", "∠ACB", None)],
               ("∠ACB", deg(c)))
    d.step(LP, "∠ACB and ∠ACD form a line", [("angle1", "∠ACB", v), ("angle2", "∠ACD", None)], ("∠ACD", deg(a + b)))
    return d


def exterior_angle(rng, pick: Picker, chain):
    f = "triangle_exterior_angle"
    a = pick.int("A", (30, 80), (95, 130))
    b = pick.int("B", (25, min(70, 165 - a)))
    e, c = a + b, 180 - a - b
    fig = tri_figure(a, b, True, ("A", "B"))
    if chain == (EXT,) and rng.random() < 0.5:
        d = new_draft(f, f"in △ABC, D lies on the extension of BC, ∠A = {a}°, ∠B = {b}°", "∠ACD", e, fig, chain,
              mistakes=[c, 180 - a, 180 - b, abs(a - b) or 90])
        d.step(EXT, "∠ACD is exterior to △ABC", [("exterior", "∠ACD", None), ("remote1", "∠A", deg(a)),
                                                  ("remote2", "∠B", deg(b))], ("∠ACD", deg(e)))
        return d
    if chain == (EXT,):
        fig = tri_figure(a, b, True, ("A", "ACD"))
        d = new_draft(f, f"in △ABC, D lies on the extension of BC, ∠ACD = {e}°, ∠A = {a}°", "∠B", b, fig, chain,
              mistakes=[180 - e, e + a if e + a < 180 else a, 180 - b])
        d.step(EXT, "∠ACD is exterior to △ABC", [("exterior", "∠ACD", deg(e)), ("remote1", "∠A", deg(a)),
                                                  ("remote2", "∠B", None)], ("∠B", deg(b)))
        return d
    if chain == (EXT, LP):
        d = new_draft(f, f"in △ABC, D lies on the extension of BC, ∠A = {a}°, ∠B = {b}°", "∠ACB", c, fig, chain,
              mistakes=[e, 180 - a, 180 - b])
        v = d.step(EXT, "∠ACD is exterior to △ABC", [("exterior", "∠ACD", None), ("remote1", "∠A", deg(a)),
                                                      ("remote2", "∠B", deg(b))], ("∠ACD", deg(e)))
        d.step(LP, "∠ACD and ∠ACB form a line", [("angle1", "∠ACD", v), ("angle2", "∠ACB", None)], ("∠ACB", deg(c)))
        return d
    # (LP, EXT): from the interior angle at C to the exterior one, then to the remote angle
    fig = Figure(pts=fig.pts, segs=fig.segs, arcs=[("A", "B", "C", 1), ("C", "A", "B", 2)])
    d = new_draft(f, f"in △ABC, D lies on the extension of BC, ∠ACB = {c}°, ∠A = {a}°", "∠B", b, fig, chain,
          mistakes=[180 - b, c, b + 20])
    v = d.step(LP, "∠ACB and ∠ACD form a line", [("angle1", "∠ACB", deg(c)), ("angle2", "∠ACD", None)], ("∠ACD", deg(e)))
    d.step(EXT, "∠ACD is exterior to △ABC", [("exterior", "∠ACD", v), ("remote1", "∠A", deg(a)),
                                              ("remote2", "∠B", None)], ("∠B", deg(b)))
    return d


def isosceles(rng, pick: Picker, chain):
    f = "isosceles_base_angles"
    b = pick.int("B", (30, 75), (76, 88))
    A, B, C = (0.5, 0.5 * math.tan(math.radians(b))), (0.0, 0.0), (1.0, 0.0)
    fig = Figure(pts={"A": A, "B": B, "C": C}, arcs=[("B", "A", "C", 1)], ticks=[("A", "B", 1), ("A", "C", 1)])
    fig.poly("A", "B", "C")
    given = f"in △ABC, AB = AC, ∠B = {b}°"
    if chain == (ISO,):
        d = new_draft(f, given, "∠C", b, fig, chain, mistakes=[180 - 2 * b, 180 - b, 90 - b])
        d.step(ISO, "AB = AC", [("base_angle1", "∠B", deg(b)), ("base_angle2", "∠C", None)], ("∠C", deg(b)))
        return d
    if chain == (ISO, TAS):
        d = new_draft(f, given, "∠A", 180 - 2 * b, fig, chain, mistakes=[180 - b, b, 90 - b / 2 if b % 2 == 0 else 2 * b])
    else:
        fig.pts["D"] = along(B, A, 1.45)
        fig.segs.append(("A", "D"))
        d = new_draft(f, given + ", D lies on the extension of BA", "∠CAD", 2 * b, fig, chain, mistakes=[180 - 2 * b, b, 180 - b])
    c = d.step(ISO, "AB = AC", [("base_angle1", "∠B", deg(b)), ("base_angle2", "∠C", None)], ("∠C", deg(b)))
    apex = d.step(TAS, "△ABC", [("angle1", "∠B", deg(b)), ("angle2", "∠C", c), ("angle3", "∠BAC", None)],
                  ("∠BAC", deg(180 - 2 * b)))
    if chain == (ISO, TAS, LP):
        d.step(LP, "∠BAC and ∠CAD form a line", [("angle1", "∠BAC", apex), ("angle2", "∠CAD", None)], ("∠CAD", deg(2 * b)))
    else:
        d.ask = "∠BAC"
    return d


def equilateral(rng, pick: Picker, chain):
    f = "equilateral_triangle"
    A, B, C = triangle(60, 60)
    fig = Figure(pts={"A": A, "B": B, "C": C}, ticks=[("A", "B", 1), ("B", "C", 1), ("A", "C", 1)])
    fig.poly("A", "B", "C")
    if chain == (EQ, LP):
        fig.pts["D"] = along(B, C, 1.4)
        fig.segs.append(("C", "D"))
        fig.arcs.append(("C", "A", "D", 1))
        d = new_draft(f, "△ABC is equilateral, D lies on the extension of BC", "∠ACD", 120, fig, chain, mistakes=[60, 90, 150])
        v = d.step(EQ, "AB = BC = CA", [("angle", "∠ACB", None)], ("∠ACB", deg(60)))
        d.step(LP, "∠ACB and ∠ACD form a line", [("angle1", "∠ACB", v), ("angle2", "∠ACD", None)], ("∠ACD", deg(120)))
        return d
    x = pick.int("BAD", (10, 50), (51, 58))
    # D on BC with ∠BAD = x: in △ABD the angle at D is 120 - x, so BD / AB = sin x / sin(120 - x)
    bd = math.sin(math.radians(x)) / math.sin(math.radians(120 - x))
    fig.pts["D"] = along(B, C, bd)
    fig.segs.append(("A", "D"))
    fig.arcs.append(("A", "B", "D", 1))
    given = f"△ABC is equilateral, D lies on BC, ∠BAD = {x}°"
    if chain == (EQ, TAS):
        d = new_draft(f, given, "∠ADB", 120 - x, fig, chain, mistakes=[60 + x, 180 - x, 90 - x])
    else:
        d = new_draft(f, given, "∠ADC", 60 + x, fig, chain, mistakes=[120 - x, 180 - x, 60 - x if x < 60 else 30])
    v = d.step(EQ, "AB = BC = CA", [("angle", "∠ABC", None)], ("∠ABC", deg(60)))
    adb = d.step(TAS, "△ABD", [("angle1", "∠ABC", v), ("angle2", "∠BAD", deg(x)), ("angle3", "∠ADB", None)],
                 ("∠ADB", deg(120 - x)))
    if chain == (EQ, TAS, LP):
        d.step(LP, "∠ADB and ∠ADC form a line", [("angle1", "∠ADB", adb), ("angle2", "∠ADC", None)], ("∠ADC", deg(60 + x)))
    return d


def right_triangle_fig(a, b):
    """Right angle at C=(0,0), A on the x axis (AC = b), B on the y axis (BC = a)."""
    fig = Figure(pts={"C": (0.0, 0.0), "A": (float(b), 0.0), "B": (0.0, float(a))}, rights=[("C", "A", "B")])
    fig.poly("A", "B", "C")
    return fig


def pick_triple(rng, pick: Picker):
    t = pick.choice("triple", TRIPLES)
    k = pick.int("k", (1, 3), (4, 9))
    return tuple(k * s for s in t)


def pythagorean(rng, pick: Picker, chain):
    f = "pythagorean_theorem"
    a, b, c = pick_triple(rng, pick)
    fig = right_triangle_fig(a, b)
    if chain == (PYTH,):
        if rng.random() < 0.5:
            d = new_draft(f, f"in right △ABC, ∠C = 90°, BC = {a}, AC = {b}", "the length of AB", c, fig, chain, unit="",
                  mistakes=[a + b, abs(b - a) or 1, c + 1, c * 2])
            d.step(PYTH, "∠C = 90°", [("a", "BC", Num(a)), ("b", "AC", Num(b)), ("c", "AB", None)], ("AB", Num(c)))
        else:
            d = new_draft(f, f"in right △ABC, ∠C = 90°, BC = {a}, AB = {c}", "the length of AC", b, fig, chain, unit="",
                  mistakes=[a + c, c - a, b + 1, b * 2])
            d.step(PYTH, "∠C = 90°", [("a", "BC", Num(a)), ("b", "AC", None), ("c", "AB", Num(c))], ("AC", Num(b)))
        return d
    # (PYTH, MID): the midline parallel to the hypotenuse is half of it
    fig.pts["D"], fig.pts["E"] = along(fig.pts["C"], fig.pts["A"], 0.5), along(fig.pts["C"], fig.pts["B"], 0.5)
    fig.segs.append(("D", "E"))
    fig.ticks += [("C", "D", 1), ("D", "A", 1), ("C", "E", 2), ("E", "B", 2)]
    d = new_draft(f, f"in right △ABC, ∠C = 90°, BC = {a}, AC = {b}, D and E are the midpoints of AC and BC",
          "the length of DE", Num(c) / 2, fig, chain, unit="", mistakes=[c, Num(a + b) / 2, Num(c) * 2])
    ab = d.step(PYTH, "∠C = 90°", [("a", "BC", Num(a)), ("b", "AC", Num(b)), ("c", "AB", None)], ("AB", Num(c)))
    d.step(MID, "D, E midpoints of AC, BC", [("midline", "DE", None), ("base", "AB", ab)], ("DE", Num(c) / 2))
    return d


def pythagorean_converse(rng, pick: Picker, chain):
    f = "pythagorean_converse"
    a, b, c = pick_triple(rng, pick)
    fig = right_triangle_fig(a, b)
    fig.rights = []
    d = new_draft(f, f"in △ABC, BC = {a}, AC = {b}, AB = {c}", "∠C", 90, fig, chain, mistakes=[60, 45, 120, 180])
    d.step(CONV, f"{a}² + {b}² = {c}²", [("a", "BC", Num(a)), ("b", "AC", Num(b)), ("c", "AB", Num(c)),
                                         ("angle", "∠C", None)], ("∠C", deg(90)))
    return d


# ------------------------------------------------------------------------------------ lines

def parallel_figure(theta):
    """AB ∥ CD (horizontal), transversal EF meeting AB at G and CD at H; ∠EGB = theta."""
    u = (math.cos(math.radians(theta)), math.sin(math.radians(theta)))
    G = (0.0, 1.0)
    H = (G[0] - u[0] / u[1], 0.0)
    lo, hi = min(G[0], H[0]) - 0.9, max(G[0], H[0]) + 0.9
    pts = {"A": (lo, 1.0), "B": (hi, 1.0), "C": (lo, 0.0), "D": (hi, 0.0), "G": G, "H": H,
           "E": (G[0] + 0.45 * u[0], 1 + 0.45 * u[1]), "F": (H[0] - 0.45 * u[0], -0.45 * u[1])}
    fig = Figure(pts=pts, segs=[("A", "B"), ("C", "D"), ("E", "F")], parallels=[("A", "B", 1), ("C", "D", 1)])
    return fig


PAR_GIVEN = "AB ∥ CD, line EF meets AB at G and CD at H"
PAR_COND = "AB ∥ CD; EF crosses them at G, H"


def parallel_corresponding(rng, pick: Picker, chain):
    f = "parallel_corresponding"
    x = pick.int("x", (30, 80), (100, 150))
    fig = parallel_figure(x)
    if chain == (VERT, CORR):
        fig.arcs += [("G", "A", "H", 1), ("H", "G", "D", 2)]
        d = new_draft(f, f"{PAR_GIVEN}, ∠AGH = {x}°", "∠GHD", x, fig, chain, mistakes=[180 - x, 90 - x if x < 90 else x - 90, x / 2 if x % 2 == 0 else 2 * x])
        v = d.step(VERT, "AB and EF cross at G", [("angle1", "∠AGH", deg(x)), ("angle2", "∠EGB", None)], ("∠EGB", deg(x)))
        d.step(CORR, PAR_COND, [("angle1", "∠EGB", v), ("angle2", "∠GHD", None)], ("∠GHD", deg(x)))
        return d
    fig.arcs.append(("G", "E", "B", 1))
    given = f"{PAR_GIVEN}, ∠EGB = {x}°"
    if chain == (CORR,):
        fig.arcs.append(("H", "G", "D", 2))
        d = new_draft(f, given, "∠GHD", x, fig, chain, mistakes=[180 - x, 90 - x if x < 90 else x - 90, 2 * x if x < 90 else x - 30])
        d.step(CORR, PAR_COND, [("angle1", "∠EGB", deg(x)), ("angle2", "∠GHD", None)], ("∠GHD", deg(x)))
        return d
    ask, arc, ans = {(CORR, LP): ("∠GHC", ("H", "G", "C", 2), 180 - x), (CORR, VERT): ("∠CHF", ("H", "C", "F", 2), x),
                     (CORR, LP, VERT): ("∠DHF", ("H", "D", "F", 2), 180 - x)}[chain]
    fig.arcs.append(arc)
    d = new_draft(f, given, ask, ans, fig, chain, mistakes=[180 - ans, 90 - x if x < 90 else x - 90, 360 - 2 * x if x < 90 else x - 40])
    v = d.step(CORR, PAR_COND, [("angle1", "∠EGB", deg(x)), ("angle2", "∠GHD", None)], ("∠GHD", deg(x)))
    if chain == (CORR, VERT):
        d.step(VERT, "CD and EF cross at H", [("angle1", "∠GHD", v), ("angle2", "∠CHF", None)], ("∠CHF", deg(x)))
        return d
    w = d.step(LP, "C, H, D on one line", [("angle1", "∠GHD", v), ("angle2", "∠GHC", None)], ("∠GHC", deg(180 - x)))
    if chain == (CORR, LP, VERT):
        d.step(VERT, "CD and EF cross at H", [("angle1", "∠GHC", w), ("angle2", "∠DHF", None)], ("∠DHF", deg(180 - x)))
    return d


def parallel_alternate(rng, pick: Picker, chain):
    f = "parallel_alternate"
    x = pick.int("x", (30, 80), (100, 150))
    fig = parallel_figure(x)
    if chain == (LP, ALT):
        fig.arcs += [("G", "E", "A", 1), ("H", "G", "D", 2)]
        d = new_draft(f, f"{PAR_GIVEN}, ∠EGA = {180 - x}°", "∠GHD", x, fig, chain, mistakes=[180 - x, 90 - x if x < 90 else x - 90, 2 * x if x < 90 else x - 20])
        v = d.step(LP, "A, G, B on one line", [("angle1", "∠EGA", deg(180 - x)), ("angle2", "∠AGH", None)], ("∠AGH", deg(x)))
        d.step(ALT, PAR_COND, [("angle1", "∠AGH", v), ("angle2", "∠GHD", None)], ("∠GHD", deg(x)))
        return d
    fig.arcs.append(("G", "A", "H", 1))
    given = f"{PAR_GIVEN}, ∠AGH = {x}°"
    if chain == (ALT,):
        fig.arcs.append(("H", "G", "D", 2))
        d = new_draft(f, given, "∠GHD", x, fig, chain, mistakes=[180 - x, 90 - x if x < 90 else x - 90, 2 * x if x < 90 else x - 20])
        d.step(ALT, PAR_COND, [("angle1", "∠AGH", deg(x)), ("angle2", "∠GHD", None)], ("∠GHD", deg(x)))
        return d
    three = chain == (ALT, LP, VERT)
    fig.arcs.append(("H", "D", "F", 2) if three else ("H", "G", "C", 2))
    d = new_draft(f, given, "∠DHF" if three else "∠GHC", 180 - x, fig, chain,
                  mistakes=[x, 90 - x if x < 90 else x - 90, 360 - 2 * x if x < 90 else x + 20])
    v = d.step(ALT, PAR_COND, [("angle1", "∠AGH", deg(x)), ("angle2", "∠GHD", None)], ("∠GHD", deg(x)))
    w = d.step(LP, "C, H, D on one line", [("angle1", "∠GHD", v), ("angle2", "∠GHC", None)], ("∠GHC", deg(180 - x)))
    if three:
        d.step(VERT, "CD and EF cross at H", [("angle1", "∠GHC", w), ("angle2", "∠DHF", None)], ("∠DHF", deg(180 - x)))
    return d


def parallel_co_interior(rng, pick: Picker, chain):
    f = "parallel_co_interior"
    y = pick.int("y", (100, 150), (30, 80))    # ∠BGH; outside range: acute ones
    x = 180 - y
    fig = parallel_figure(x)
    if chain == (VERT, CO):
        fig.arcs += [("G", "E", "A", 1), ("H", "G", "D", 2)]
        d = new_draft(f, f"{PAR_GIVEN}, ∠EGA = {y}°", "∠GHD", x, fig, chain, mistakes=[y, 90 - x if x < 90 else x - 90, 2 * x if x < 90 else x - 20])
        v = d.step(VERT, "AB and EF cross at G", [("angle1", "∠EGA", deg(y)), ("angle2", "∠BGH", None)], ("∠BGH", deg(y)))
        d.step(CO, PAR_COND, [("angle1", "∠BGH", v), ("angle2", "∠GHD", None)], ("∠GHD", deg(x)))
        return d
    fig.arcs.append(("G", "B", "H", 1))
    given = f"{PAR_GIVEN}, ∠BGH = {y}°"
    ask = "∠GHD" if chain == (CO,) else "∠CHF"
    fig.arcs.append(("H", "G", "D", 2) if chain == (CO,) else ("H", "C", "F", 2))
    d = new_draft(f, given, ask, x, fig, chain, mistakes=[y, 90 - x if x < 90 else x - 90, 2 * x if x < 90 else x - 20])
    v = d.step(CO, PAR_COND, [("angle1", "∠BGH", deg(y)), ("angle2", "∠GHD", None)], ("∠GHD", deg(x)))
    if chain == (CO, VERT):
        d.step(VERT, "CD and EF cross at H", [("angle1", "∠GHD", v), ("angle2", "∠CHF", None)], ("∠CHF", deg(x)))
    return d


def vertical(rng, pick: Picker, chain):
    f = "vertical_angles"
    x = pick.int("x", (30, 80), (100, 150))
    O = (0.0, 0.0)
    fig = Figure(pts={"O": O, "A": polar(O, 1, 180), "B": polar(O, 1, 0), "C": polar(O, 1, 180 - x),
                      "D": polar(O, 1, -x)}, segs=[("A", "B"), ("C", "D")], arcs=[("O", "A", "C", 1)])
    given = f"lines AB and CD meet at O, ∠AOC = {x}°"
    if chain == (VERT,):
        fig.arcs.append(("O", "B", "D", 2))
        d = new_draft(f, given, "∠BOD", x, fig, chain, mistakes=[180 - x, 90 - x if x < 90 else x - 90, 360 - x])
        d.step(VERT, "AB and CD cross at O", [("angle1", "∠AOC", deg(x)), ("angle2", "∠BOD", None)], ("∠BOD", deg(x)))
        return d
    if chain == (VERT, LP, VERT):
        fig.arcs.append(("O", "B", "C", 2))
        d = new_draft(f, given, "∠BOC", 180 - x, fig, chain, mistakes=[x, 90 - x if x < 90 else x - 90, 360 - x])
        v = d.step(VERT, "AB and CD cross at O", [("angle1", "∠AOC", deg(x)), ("angle2", "∠BOD", None)], ("∠BOD", deg(x)))
        w = d.step(LP, "A, O, B on one line", [("angle1", "∠BOD", v), ("angle2", "∠AOD", None)], ("∠AOD", deg(180 - x)))
        d.step(VERT, "AB and CD cross at O", [("angle1", "∠AOD", w), ("angle2", "∠BOC", None)], ("∠BOC", deg(180 - x)))
        return d
    fig.arcs.append(("O", "A", "D", 2))
    d = new_draft(f, given, "∠AOD", 180 - x, fig, chain, mistakes=[x, 90 - x if x < 90 else x - 90, 360 - x])
    if chain == (VERT, LP):
        v = d.step(VERT, "AB and CD cross at O", [("angle1", "∠AOC", deg(x)), ("angle2", "∠BOD", None)], ("∠BOD", deg(x)))
        d.step(LP, "A, O, B on one line", [("angle1", "∠BOD", v), ("angle2", "∠AOD", None)], ("∠AOD", deg(180 - x)))
    else:  # (LP, VERT)
        v = d.step(LP, "A, O, B on one line", [("angle1", "∠AOC", deg(x)), ("angle2", "∠BOC", None)], ("∠BOC", deg(180 - x)))
        d.step(VERT, "AB and CD cross at O", [("angle1", "∠BOC", v), ("angle2", "∠AOD", None)], ("∠AOD", deg(180 - x)))
    return d


def linear_pair(rng, pick: Picker, chain):
    f = "linear_pair"
    x = pick.int("x", (25, 155), (5, 20))
    O = (0.0, 0.0)
    fig = Figure(pts={"O": O, "A": polar(O, 1, 180), "B": polar(O, 1, 0), "C": polar(O, 0.9, 180 - x)},
                 segs=[("A", "B"), ("O", "C")], arcs=[("O", "A", "C", 1), ("O", "C", "B", 2)])
    d = new_draft(f, f"O lies on line AB, ∠AOC = {x}°", "∠BOC", 180 - x, fig, chain,
          mistakes=[x, 90 - x if x < 90 else x - 90, 360 - x])
    d.step(LP, "A, O, B on one line", [("angle1", "∠AOC", deg(x)), ("angle2", "∠BOC", None)], ("∠BOC", deg(180 - x)))
    return d


def around_point(rng, pick: Picker, chain):
    f = "angles_around_point"
    x = pick.int("x", (100, 140), (141, 170))
    y = pick.int("y", (100, 150))
    z = 360 - x - y
    O = (0.0, 0.0)
    t = rng.uniform(0, 360)
    fig = Figure(pts={"O": O, "A": polar(O, 1, t), "B": polar(O, 1, t + x), "C": polar(O, 1, t + x + y)},
                 segs=[("O", "A"), ("O", "B"), ("O", "C")], arcs=[("O", "A", "B", 1), ("O", "B", "C", 1), ("O", "C", "A", 2)])
    d = new_draft(f, f"rays OA, OB, OC start at O, ∠AOB = {x}°, ∠BOC = {y}°", "∠COA", z, fig, chain,
          mistakes=[180 - z if z < 180 else z - 90, x + y - 180 if x + y - 180 != z else z + 10, 360 - z])
    d.step(AROUND, "∠AOB, ∠BOC, ∠COA fill the turn at O", [("angle1", "∠AOB", deg(x)), ("angle2", "∠BOC", deg(y)),
                                                             ("angle3", "∠COA", None)], ("∠COA", deg(z)))
    return d


# ------------------------------------------------------------------------------------ circles

def circle_points(central):
    """Circle at O; A, B symmetric below so that ∠AOB = central; C on the major arc above."""
    O = (0.0, 0.0)
    fig = Figure(pts={"O": O, "A": polar(O, 1, 270 - central / 2), "B": polar(O, 1, 270 + central / 2)},
                 circles=[("O", 1.0)], dots=["O"])
    return fig


def inscribed(rng, pick: Picker, chain):
    f = "inscribed_angle"
    c = pick.int("central", (40, 160), (162, 178), step=2)
    fig = circle_points(c)
    O = fig.pts["O"]
    if chain == (INSC, TAS):
        a = pick.int("CAB", (20, min(80, (360 - c) // 2 - 15)))
        fig.pts["C"] = polar(O, 1, 270 + c / 2 + 2 * a)
    else:
        fig.pts["C"] = polar(O, 1, 90 + rng.uniform(-35, 35))
    fig.segs += [("O", "A"), ("O", "B"), ("C", "A"), ("C", "B")]
    fig.arcs.append(("O", "A", "B", 1))
    if chain == (INSC,) and rng.random() < 0.5:
        fig.arcs = [("C", "A", "B", 1)]
        d = new_draft(f, f"A, B, C lie on ⊙O, ∠ACB = {c // 2}°", "∠AOB", c, fig, chain, mistakes=[c // 2, 180 - c // 2, 360 - c])
        d.step(INSC, "∠ACB and ∠AOB subtend arc AB", [("central", "∠AOB", None), ("inscribed", "∠ACB", deg(c // 2))],
               ("∠AOB", deg(c)))
        return d
    if chain == (INSC,):
        d = new_draft(f, f"A, B, C lie on ⊙O, ∠AOB = {c}°", "∠ACB", c // 2, fig, chain, mistakes=[c, 180 - c // 2, 180 - c])
        d.step(INSC, "∠ACB and ∠AOB subtend arc AB", [("central", "∠AOB", deg(c)), ("inscribed", "∠ACB", None)],
               ("∠ACB", deg(c // 2)))
        return d
    if chain == (INSC, ARC):
        fig.arcs = [("C", "A", "B", 1)]
        d = new_draft(f, f"A, B, C lie on ⊙O, ∠ACB = {c // 2}°", "the degree of arc AB", c, fig, chain,
              mistakes=[c // 2, 180 - c // 2, 360 - c])
        v = d.step(INSC, "∠ACB and ∠AOB subtend arc AB", [("central", "∠AOB", None), ("inscribed", "∠ACB", deg(c // 2))],
                   ("∠AOB", deg(c)))
        d.step(ARC, "O is the centre", [("central", "∠AOB", v), ("arc", "⌒AB", None)], ("⌒AB", deg(c)))
        return d
    # (INSC, TAS)
    fig.arcs.append(("A", "C", "B", 1))
    fig.segs.append(("A", "B"))
    b = 180 - a - c // 2
    d = new_draft(f, f"A, B, C lie on ⊙O, ∠AOB = {c}°, ∠CAB = {a}°", "∠ABC", b, fig, chain,
          mistakes=[180 - a - c if 180 - a - c > 0 else b + 10, c // 2, 180 - b])
    v = d.step(INSC, "∠ACB and ∠AOB subtend arc AB", [("central", "∠AOB", deg(c)), ("inscribed", "∠ACB", None)],
               ("∠ACB", deg(c // 2)))
    d.step(TAS, "△ABC", [("angle1", "∠CAB", deg(a)), ("angle2", "∠ACB", v), ("angle3", "∠ABC", None)], ("∠ABC", deg(b)))
    return d


def central(rng, pick: Picker, chain):
    f = "central_angle"
    c = pick.int("arc", (40, 160), (162, 178), step=2)
    fig = circle_points(c)
    fig.pts["C"] = polar(fig.pts["O"], 1, 90 + rng.uniform(-35, 35))
    fig.segs += [("O", "A"), ("O", "B")]
    given = f"A, B, C lie on ⊙O, the degree of arc AB is {c}°"
    if chain == (ARC,):
        fig.arcs.append(("O", "A", "B", 1))
        d = new_draft(f, given, "∠AOB", c, fig, chain, mistakes=[c // 2, 180 - c, 360 - c])
        d.step(ARC, "O is the centre", [("central", "∠AOB", None), ("arc", "⌒AB", deg(c))], ("∠AOB", deg(c)))
        return d
    fig.segs += [("C", "A"), ("C", "B")]
    fig.arcs.append(("C", "A", "B", 1))
    d = new_draft(f, given, "∠ACB", c // 2, fig, chain, mistakes=[c, 180 - c // 2, 90 - c // 2 if c < 180 else 45])
    v = d.step(ARC, "O is the centre", [("central", "∠AOB", None), ("arc", "⌒AB", deg(c))], ("∠AOB", deg(c)))
    d.step(INSC, "∠ACB and ∠AOB subtend arc AB", [("central", "∠AOB", v), ("inscribed", "∠ACB", None)], ("∠ACB", deg(c // 2)))
    return d


def semicircle(rng, pick: Picker, chain):
    f = "angle_in_semicircle"
    a = pick.int("CAB", (20, 70), (71, 85))
    O = (0.0, 0.0)
    fig = Figure(pts={"O": O, "A": (-1.0, 0.0), "B": (1.0, 0.0), "C": polar(O, 1, 2 * a)}, circles=[("O", 1.0)],
                 segs=[("A", "B"), ("A", "C"), ("B", "C")], arcs=[("A", "B", "C", 1)], dots=["O"])
    given = f"AB is a diameter of ⊙O, C lies on ⊙O, ∠CAB = {a}°"
    if chain == (SEMI,):
        d = new_draft(f, given, "∠ACB", 90, fig, chain, mistakes=[180 - a, 90 - a, 2 * a if 2 * a != 90 else 60])
        d.step(SEMI, "AB is a diameter", [("angle", "∠ACB", None)], ("∠ACB", deg(90)))
        return d
    if chain == (SEMI, TAS):
        d = new_draft(f, given, "∠ABC", 90 - a, fig, chain, mistakes=[180 - a, a, 2 * a if 2 * a != 90 - a else 90])
    else:
        fig.pts["E"] = (1.55, 0.0)
        fig.segs.append(("B", "E"))
        fig.arcs.append(("B", "C", "E", 2))
        d = new_draft(f, given + ", E lies on the extension of AB", "∠CBE", 90 + a, fig, chain, mistakes=[90 - a, 180 - a, 2 * a])
    v = d.step(SEMI, "AB is a diameter", [("angle", "∠ACB", None)], ("∠ACB", deg(90)))
    w = d.step(TAS, "△ABC", [("angle1", "∠ACB", v), ("angle2", "∠CAB", deg(a)), ("angle3", "∠ABC", None)], ("∠ABC", deg(90 - a)))
    if chain == (SEMI, TAS, LP):
        d.step(LP, "A, B, E on one line", [("angle1", "∠ABC", w), ("angle2", "∠CBE", None)], ("∠CBE", deg(90 + a)))
    return d


def tangent_figure(r, dist, second=False):
    O = (0.0, 0.0)
    t = math.degrees(math.acos(r / dist))
    fig = Figure(pts={"O": O, "P": (float(dist), 0.0), "A": polar(O, r, t)}, circles=[("O", float(r))],
                 segs=[("O", "A"), ("P", "A"), ("O", "P")], rights=[("A", "O", "P")], dots=["O"])
    if second:
        fig.pts["B"] = polar(O, r, -t)
        fig.segs += [("O", "B"), ("P", "B")]
    return fig


def tangent_perpendicular(rng, pick: Picker, chain):
    f = "tangent_perpendicular"
    if chain == (TPERP, TAS):
        p = pick.int("APO", (20, 70), (71, 85))
        fig = tangent_figure(1.0, 1 / math.sin(math.radians(p)))
        fig.arcs.append(("P", "A", "O", 1))
        d = new_draft(f, f"PA is tangent to ⊙O at A, ∠APO = {p}°", "∠AOP", 90 - p, fig, chain, mistakes=[p, 180 - p, 90 + p])
        v = d.step(TPERP, "PA touches ⊙O at A", [("angle", "∠OAP", None)], ("∠OAP", deg(90)))
        d.step(TAS, "△AOP", [("angle1", "∠OAP", v), ("angle2", "∠APO", deg(p)), ("angle3", "∠AOP", None)], ("∠AOP", deg(90 - p)))
        return d
    a, b, c = pick_triple(rng, pick)
    fig = tangent_figure(a, c, second=chain != (TPERP, PYTH))
    if chain == (TPERP, PYTH):
        d = new_draft(f, f"PA is tangent to ⊙O at A, OA = {a}, OP = {c}", "the length of PA", b, fig, chain, unit="",
              mistakes=[a + c, c - a, b + 1, Num(a + c) / 2])
    else:
        d = new_draft(f, f"PA and PB are tangent to ⊙O at A and B, OA = {a}, OP = {c}", "the length of PB", b, fig, chain,
              unit="", mistakes=[a + c, c - a, b + 1, a])
    v = d.step(TPERP, "PA touches ⊙O at A", [("angle", "∠OAP", None)], ("∠OAP", deg(90)))
    pa = d.step(PYTH, "∠OAP = 90°", [("a", "OA", Num(a)), ("b", "PA", None), ("c", "OP", Num(c))], ("PA", Num(b)))
    if chain == (TPERP, PYTH, TSEG):
        d.step(TSEG, "PA, PB tangent from P", [("tangent1", "PA", pa), ("tangent2", "PB", None)], ("PB", Num(b)))
    return d


def tangent_segments(rng, pick: Picker, chain):
    if chain != (TSEG,):
        return tangent_perpendicular(rng, pick, chain)
    f = "tangent_segments"
    x = pick.int("PA", (2, 20), (21, 60))
    fig = tangent_figure(1.0, rng.uniform(1.6, 2.4), second=True)
    fig.ticks += [("P", "A", 1), ("P", "B", 1)]
    d = new_draft(f, f"PA and PB are tangent to ⊙O at A and B, PA = {x}", "the length of PB", x, fig, chain, unit="",
          mistakes=[2 * x, Num(x) / 2, x + 1])
    d.step(TSEG, "PA, PB tangent from P", [("tangent1", "PA", Num(x)), ("tangent2", "PB", None)], ("PB", Num(x)))
    return d


def cyclic(rng, pick: Picker, chain):
    f = "cyclic_quadrilateral"
    if chain[0] == INSC:
        c = pick.int("BOD", (60, 170), (171, 178), step=2)
        x = c // 2
    else:
        x = pick.int("BAD", (50, 130), (20, 45))
    O = (0.0, 0.0)
    margin = min(25.0, (180 - x) * 0.8)
    fig = Figure(pts={"O": O, "A": polar(O, 1, 90 + rng.uniform(-margin, margin)), "B": polar(O, 1, 270 - x),
                      "C": polar(O, 1, 270 + rng.uniform(-0.6, 0.6) * x), "D": polar(O, 1, 270 + x)},
                 circles=[("O", 1.0)], dots=["O"])
    fig.poly("A", "B", "C", "D")
    fig.arcs.append(("A", "B", "D", 1))
    ext = chain[-1] == LP
    if ext:
        fig.pts["E"] = along(fig.pts["B"], fig.pts["C"], 1.5)
        fig.segs.append(("C", "E"))
        fig.arcs.append(("C", "D", "E", 2))
    if chain[0] == INSC:
        fig.arcs = [("O", "B", "D", 1)] + fig.arcs[1:]
        fig.segs += [("O", "B"), ("O", "D")]
        given = f"A, B, C, D lie on ⊙O, ∠BOD = {c}°"
    else:
        given = f"A, B, C, D lie on ⊙O, ∠BAD = {x}°"
    if ext:
        given += ", E lies on the extension of BC"
    ask, ans = ("∠DCE", x) if ext else ("∠BCD", 180 - x)
    d = new_draft(f, given, ask, ans, fig, chain, mistakes=[180 - ans, 2 * x if 2 * x < 180 else x // 2, 90 + x // 2 if x % 2 == 0 else 90])
    v = deg(x)
    if chain[0] == INSC:
        v = d.step(INSC, "∠BAD and ∠BOD subtend arc BD", [("central", "∠BOD", deg(c)), ("inscribed", "∠BAD", None)],
                   ("∠BAD", deg(x)))
    w = d.step(CYC, "ABCD is inscribed in ⊙O", [("angle1", "∠BAD", v), ("angle2", "∠BCD", None)], ("∠BCD", deg(180 - x)))
    if ext:
        d.step(LP, "B, C, E on one line", [("angle1", "∠BCD", w), ("angle2", "∠DCE", None)], ("∠DCE", deg(x)))
    return d


# ------------------------------------------------------------------------------------ lengths

def similar(rng, pick: Picker, chain):
    f = "similar_triangles"
    ad = pick.int("AD", (2, 9), (10, 30))
    t = pick.choice("ratio", ("3/2", "2", "5/2", "3"))
    num, den = (int(t.split("/")[0]), int(t.split("/")[1])) if "/" in t else (int(t), 1)
    while ad % den:
        ad += 1
    ab = ad * num // den
    de = pick.int("DE", (2, 12))
    while (de * num) % den:
        de += 1
    bc = Num(de * num) / den
    # drawn to scale: AB and BC have their stated lengths, the angle at B is free
    B, C = (0.0, 0.0), (float(bc.coef), 0.0)
    A = polar(B, ab, rng.uniform(45, 80))
    s = ad / ab
    fig = Figure(pts={"A": A, "B": B, "C": C, "D": along(A, B, s), "E": along(A, C, s)},
                 segs=[("A", "B"), ("B", "C"), ("C", "A"), ("D", "E")], parallels=[("D", "E", 1), ("B", "C", 1)])
    given = f"in △ABC, DE ∥ BC with D on AB and E on AC, AD = {ad}, AB = {ab}"
    binds = [("a1", "AD", Num(ad)), ("a2", "AB", Num(ab))]
    if rng.random() < 0.5:
        d = new_draft(f, f"{given}, DE = {de}", "the length of BC", bc, fig, chain, unit="",
              mistakes=[Num(de * ad) / ab, de + ab - ad, de * 2 if bc != de * 2 else de * 3])
        d.step(SIM, "△ADE ∼ △ABC", binds + [("b1", "DE", Num(de)), ("b2", "BC", None)], ("BC", bc))
    else:
        d = new_draft(f, f"{given}, BC = {bc.text()}", "the length of DE", de, fig, chain, unit="",
              mistakes=[bc * ab / ad, bc - (ab - ad) if (bc - (ab - ad)).positive and bc - (ab - ad) != Num(de) else bc * 2, Num(de) * 2])
        d.step(SIM, "△ADE ∼ △ABC", binds + [("b1", "DE", None), ("b2", "BC", bc)], ("DE", Num(de)))
    return d


def midline(rng, pick: Picker, chain):
    f = "triangle_midline"
    base = pick.int("BC", (4, 30), (31, 90))
    A, B, C = triangle(rng.uniform(45, 80), rng.uniform(45, 70))
    fig = Figure(pts={"A": A, "B": B, "C": C, "D": along(A, B, 0.5), "E": along(A, C, 0.5)},
                 segs=[("A", "B"), ("B", "C"), ("C", "A"), ("D", "E")],
                 ticks=[("A", "D", 1), ("D", "B", 1), ("A", "E", 2), ("E", "C", 2)])
    given = "in △ABC, D and E are the midpoints of AB and AC"
    half = Num(base) / 2
    if rng.random() < 0.5:
        d = new_draft(f, f"{given}, BC = {base}", "the length of DE", half, fig, chain, unit="", mistakes=[base * 2, base, half + 1])
        d.step(MID, "D, E midpoints of AB, AC", [("midline", "DE", None), ("base", "BC", Num(base))], ("DE", half))
    else:
        d = new_draft(f, f"{given}, DE = {base}", "the length of BC", base * 2, fig, chain, unit="", mistakes=[half, base, base * 4])
        d.step(MID, "D, E midpoints of AB, AC", [("midline", "DE", Num(base)), ("base", "BC", None)], ("BC", Num(base * 2)))
    return d


def parallelogram_figure(x, w=1.4, h=0.9):
    A = (0.0, 0.0)
    Dp = polar(A, h, x)
    B = (w, 0.0)
    fig = Figure(pts={"A": A, "B": B, "C": (B[0] + Dp[0], Dp[1]), "D": Dp})
    fig.poly("A", "B", "C", "D")
    return fig


def parallelogram_angles(rng, pick: Picker, chain):
    f = "parallelogram_angles"
    x = pick.int("A", (50, 130), (20, 45))
    fig = parallelogram_figure(x, rng.uniform(1.1, 1.7), rng.uniform(0.7, 1.0))
    fig.arcs.append(("A", "B", "D", 1))
    given = f"ABCD is a parallelogram, ∠DAB = {x}°"
    if chain == (POPP,):
        fig.arcs.append(("C", "D", "B", 2))
        d = new_draft(f, given, "∠BCD", x, fig, chain, mistakes=[180 - x, 90 - x if x < 90 else x - 90, 360 - 2 * x if x < 90 else x // 2 + 1])
        d.step(POPP, "ABCD is a parallelogram", [("angle1", "∠DAB", deg(x)), ("angle2", "∠BCD", None)], ("∠BCD", deg(x)))
        return d
    if chain == (PCONS,):
        fig.arcs.append(("B", "C", "A", 2))
        d = new_draft(f, given, "∠ABC", 180 - x, fig, chain, mistakes=[x, 90 - x if x < 90 else x - 90, 360 - x])
        d.step(PCONS, "AB is a shared side", [("angle1", "∠DAB", deg(x)), ("angle2", "∠ABC", None)], ("∠ABC", deg(180 - x)))
        return d
    fig.arcs.append(("D", "A", "C", 2))
    d = new_draft(f, given, "∠ADC", 180 - x, fig, chain, mistakes=[x, 90 - x if x < 90 else x - 90, 360 - x])
    if chain == (PCONS, POPP):
        v = d.step(PCONS, "AB is a shared side", [("angle1", "∠DAB", deg(x)), ("angle2", "∠ABC", None)], ("∠ABC", deg(180 - x)))
        d.step(POPP, "ABCD is a parallelogram", [("angle1", "∠ABC", v), ("angle2", "∠ADC", None)], ("∠ADC", deg(180 - x)))
    else:  # (POPP, PCONS)
        v = d.step(POPP, "ABCD is a parallelogram", [("angle1", "∠DAB", deg(x)), ("angle2", "∠BCD", None)], ("∠BCD", deg(x)))
        d.step(PCONS, "CD is a shared side", [("angle1", "∠BCD", v), ("angle2", "∠ADC", None)], ("∠ADC", deg(180 - x)))
    return d


def parallelogram_sides(rng, pick: Picker, chain):
    f = "parallelogram_sides"
    s = pick.int("side", (2, 30), (31, 90))
    other = pick.int("other", (max(2, (s + 2) // 3), max(3, min(3 * s, s + 20))))   # no needle-thin figures
    if other == s:
        other += 1
    x = rng.uniform(55, 80)
    first = rng.random() < 0.5
    # drawn to scale: AB along the base, the other given side as the slanted one
    fig = parallelogram_figure(x, s, other) if first else parallelogram_figure(x, other, s)
    if first:
        d = new_draft(f, f"ABCD is a parallelogram, AB = {s}, BC = {other}", "the length of CD", s, fig, chain, unit="",
              mistakes=[other, s + other, Num(s) / 2])
        d.step(PSIDE, "ABCD is a parallelogram", [("side1", "AB", Num(s)), ("side2", "CD", None)], ("CD", Num(s)))
    else:
        d = new_draft(f, f"ABCD is a parallelogram, AD = {s}, AB = {other}", "the length of BC", s, fig, chain, unit="",
              mistakes=[other, s + other, 2 * (s + other)])
        d.step(PSIDE, "ABCD is a parallelogram", [("side1", "AD", Num(s)), ("side2", "BC", None)], ("BC", Num(s)))
    return d


def rectangle(rng, pick: Picker, chain):
    f = "rectangle_diagonals"
    if chain == (RECT,):
        diag = pick.int("AC", (4, 30), (31, 90))
        w, h = 1.0, rng.uniform(0.45, 0.8)
    else:
        h, w, diag = pick_triple(rng, pick)
    fig = Figure(pts={"A": (0.0, float(h)), "B": (0.0, 0.0), "C": (float(w), 0.0), "D": (float(w), float(h)),
                      "O": (w / 2, h / 2)}, rights=[("B", "A", "C")])
    fig.poly("A", "B", "C", "D")
    fig.segs += [("A", "C"), ("B", "D")]
    half = Num(diag) / 2
    if chain == (RECT,):
        d = new_draft(f, f"the diagonals of rectangle ABCD meet at O, AC = {diag}", "the length of OB", half, fig, chain, unit="",
              mistakes=[diag, diag * 2, half + 1])
        d.step(RECT, "ABCD is a rectangle", [("diagonal", "AC", Num(diag)), ("half_other", "OB", None)], ("OB", half))
        return d
    d = new_draft(f, f"the diagonals of rectangle ABCD meet at O, AB = {h}, BC = {w}", "the length of OB", half, fig, chain,
          unit="", mistakes=[diag, Num(h + w) / 2, half + 1])
    ac = d.step(PYTH, "∠ABC = 90°", [("a", "AB", Num(h)), ("b", "BC", Num(w)), ("c", "AC", None)], ("AC", Num(diag)))
    d.step(RECT, "ABCD is a rectangle", [("diagonal", "AC", ac), ("half_other", "OB", None)], ("OB", half))
    return d


def rhombus(rng, pick: Picker, chain):
    f = "rhombus_diagonals"
    p, q, s = pick_triple(rng, pick)
    if rng.random() < 0.5:
        p, q = q, p
    O = (0.0, 0.0)
    fig = Figure(pts={"A": (-float(p), 0.0), "C": (float(p), 0.0), "B": (0.0, -float(q)), "D": (0.0, float(q)), "O": O},
                 rights=[("O", "C", "D")], ticks=[("A", "B", 1), ("B", "C", 1), ("C", "D", 1), ("D", "A", 1)])
    fig.poly("A", "B", "C", "D")
    fig.segs += [("A", "C"), ("B", "D")]
    d = new_draft(f, f"the diagonals of rhombus ABCD meet at O, AC = {2 * p}, BD = {2 * q}", "the length of AB", s, fig, chain,
          unit="", mistakes=[2 * s, p + q, s + 1])
    d.step(RHOMB, "ABCD is a rhombus", [("half_d1", "AO", Num(p)), ("half_d2", "BO", Num(q)), ("side", "AB", None)], ("AB", Num(s)))
    return d


def polygon(rng, pick: Picker, chain):
    f = "polygon_angles"
    names = "ABCDEFGH"
    if chain == (POLY,):
        n = pick.int("n", (5, 10), (11, 20))
    else:
        n = pick.int("n_regular", (5, 10), (12, 36))
        while 360 % n:   # whole-degree angles only
            n = pick.int("n_regular", (5, 10), (12, 36))
    O = (0.0, 0.0)
    t = rng.uniform(0, 360)
    jitter = 0.0 if chain != (POLY,) else 0.12
    pts = {}
    labelled = n <= len(names)
    for i in range(n):
        key = names[i] if labelled else f"v{i}"
        pts[key] = polar(O, 1 + rng.uniform(-jitter, jitter), t + 360 * i / n)
    fig = Figure(pts=pts)
    fig.poly(*pts)
    total = (n - 2) * 180
    if chain == (POLY,):
        d = new_draft(f, f"a convex polygon has {n} sides", "the sum of its interior angles", total, fig, chain,
              mistakes=[n * 180, (n - 1) * 180, 360])
        d.step(POLY, f"the polygon has {n} sides", [("n", None, Num(n)), ("total", None, None)], ("total", deg(total)))
        return d
    angle = total // n
    # ∠1: the interior angle at the second vertex; ∠2: the exterior angle beside it (side extended)
    keys = list(pts)
    fig.arcs.append((keys[1], keys[0], keys[2], 1))
    fig.angle_labels.append((keys[1], keys[0], keys[2], "1"))
    if chain == (REG,):
        d = new_draft(f, f"a regular polygon has {n} sides, ∠1 is one of its interior angles", "∠1", angle, fig, chain,
              mistakes=[180 - angle, total, 360 // n + 10 if 360 // n + 10 != angle else 360 // n])
        d.step(REG, f"regular, {n} sides", [("n", None, Num(n)), ("angle", "∠1", None)], ("∠1", deg(angle)))
        return d
    fig.pts["x"] = along(pts[keys[0]], pts[keys[1]], 1.6)
    fig.segs.append((keys[1], "x"))
    fig.arcs.append((keys[1], "x", keys[2], 2))
    fig.angle_labels.append((keys[1], "x", keys[2], "2"))
    d = new_draft(f, f"a regular polygon has {n} sides, ∠1 is an interior angle and ∠2 the exterior angle beside it",
          "∠2", 180 - angle, fig, chain,
          mistakes=[angle, 360 - angle, total // 10 if total // 10 != 180 - angle else angle + 10])
    v = d.step(REG, f"regular, {n} sides", [("n", None, Num(n)), ("angle", "∠1", None)], ("∠1", deg(angle)))
    d.step(LP, "∠1 and ∠2 form a line", [("angle1", "∠1", v), ("angle2", "∠2", None)], ("∠2", deg(180 - angle)))
    return d


def circle_measure(rng, pick: Picker, chain):
    f = "circle_measures"
    r = pick.int("r", (1, 15), (16, 60))
    O = (0.0, 0.0)
    t = rng.uniform(0, 360)
    fig = Figure(pts={"O": O, "A": polar(O, 1, t)}, circles=[("O", 1.0)], segs=[("O", "A")], dots=["O"])
    given = f"the radius OA of ⊙O is {r}"
    if chain == (CIRC,):
        d = new_draft(f, given, "the circumference of ⊙O", Num(2 * r, "π"), fig, chain, unit="",
              mistakes=[Num(r * r, "π"), Num(r, "π"), Num(4 * r, "π")])
        d.step(CIRC, "OA is a radius", [("r", "OA", Num(r)), ("circumference", None, None)], ("circumference", Num(2 * r, "π")))
        return d
    d = new_draft(f, given, "the area of ⊙O", Num(r * r, "π"), fig, chain, unit="",
          mistakes=[Num(2 * r, "π"), Num(2 * r * r, "π"), Num(r * r * 4, "π")])
    d.step(AREA, "OA is a radius", [("r", "OA", Num(r)), ("area", None, None)], ("area", Num(r * r, "π")))
    return d


def arc_sector(rng, pick: Picker, chain):
    f = "arc_and_sector"
    r = pick.int("r", (2, 12), (13, 40))
    choices = (30, 36, 40, 45, 60, 72, 90, 120, 135, 144, 150)
    n = None
    for _ in range(40):
        n = rng.choice(choices)
        key = n * r if chain != (SECTOR,) else n * r * r
        den = 180 if chain != (SECTOR,) else 360
        coef = Fraction(key, den)
        if coef.denominator in (1, 2, 4, 5):
            break
    O = (0.0, 0.0)
    t = rng.uniform(0, 360)
    fig = Figure(pts={"O": O, "A": polar(O, 1, t), "B": polar(O, 1, t + n)}, circles=[("O", 1.0)],
                 segs=[("O", "A"), ("O", "B")], arcs=[("O", "A", "B", 1)], dots=["O"])
    if chain == (SECTOR,):
        area = Num(n * r * r, "π") / 360
        d = new_draft(f, f"in ⊙O the radius is {r} and ∠AOB = {n}°", "the area of sector AOB", area, fig, chain, unit="",
              mistakes=[Num(n * r, "π") / 180, Num(n * r * r, "π") / 180, Num(r * r, "π")])
        d.step(SECTOR, "OA, OB are radii", [("central", "∠AOB", deg(n)), ("r", "OA", Num(r)), ("area", None, None)],
               ("area", area))
        return d
    length = Num(n * r, "π") / 180
    if chain == (ARCLEN,):
        d = new_draft(f, f"in ⊙O the radius is {r} and ∠AOB = {n}°", "the length of arc AB", length, fig, chain, unit="",
              mistakes=[Num(n * r * r, "π") / 360, Num(n * r, "π") / 360, Num(n * r, "π") / 90])
        d.step(ARCLEN, "OA, OB are radii", [("central", "∠AOB", deg(n)), ("r", "OA", Num(r)), ("length", None, None)],
               ("length", length))
        return d
    # (INSC, ARCLEN): the inscribed angle gives the central one first
    if n % 2:
        n += 1
    fig.pts["C"] = polar(O, 1, t + n + (360 - n) / 2 + rng.uniform(-20, 20))
    fig.segs += [("C", "A"), ("C", "B")]
    fig.arcs.append(("C", "A", "B", 1))
    length = Num(n * r, "π") / 180
    d = new_draft(f, f"A, B, C lie on ⊙O with radius {r}, ∠ACB = {n // 2}°", "the length of arc AB", length, fig, chain, unit="",
          mistakes=[Num(n * r, "π") / 360, Num(n * r, "π") / 90, Num(n * r * r, "π") / 360])
    v = d.step(INSC, "∠ACB and ∠AOB subtend arc AB", [("central", "∠AOB", None), ("inscribed", "∠ACB", deg(n // 2))],
               ("∠AOB", deg(n)))
    d.step(ARCLEN, "OA is a radius", [("central", "∠AOB", v), ("r", "OA", Num(r)), ("length", None, None)], ("length", length))
    return d


def trig(rng, pick: Picker, chain):
    f = "trig_ratios"
    angle = pick.choice("angle", (30, 45, 60))
    theorem = chain[0]
    fig_sides = {30: (1.0, math.sqrt(3)), 45: (1.0, 1.0), 60: (math.sqrt(3), 1.0)}[angle]
    # right angle at C, ∠A = angle: BC opposite, AC adjacent, AB hypotenuse
    fig = right_triangle_fig(*fig_sides)
    fig.arcs.append(("A", "B", "C", 1))
    sqrt3 = {30: (Num(1, "√3") / 3), 45: Num(1), 60: Num(1, "√3")}
    if theorem in (SIN, COS):
        h = pick.int("AB", (2, 30), (31, 90), step=2)
        half = Num(h) / 2
        root = {30: half, 45: Num(h, "√2") / 2, 60: Num(h, "√3") / 2}
        ratio_side = root[angle] if theorem == SIN else root[90 - angle]
        side = "BC" if theorem == SIN else "AC"
        role = "opposite" if theorem == SIN else "adjacent"
        d = new_draft(f, f"in right △ABC, ∠C = 90°, ∠A = {angle}°, AB = {h}", f"the length of {side}", ratio_side, fig, chain,
              unit="", mistakes=[root[90 - angle] if angle != 45 else Num(h), Num(h) * 2, Num(h)])
        d.step(theorem, "∠C = 90°", [("angle", "∠A", deg(angle)), (role, side, None), ("hypotenuse", "AB", Num(h))],
               (side, ratio_side))
        return d
    adj = pick.int("AC", (2, 30), (31, 90), step=3 if angle == 30 else 1)
    opp = Num(adj) if angle == 45 else (Num(adj, "√3") if angle == 60 else Num(adj, "√3") / 3)
    d = new_draft(f, f"in right △ABC, ∠C = 90°, ∠A = {angle}°, AC = {adj}", "the length of BC", opp, fig, chain, unit="",
          mistakes=[Num(adj) * 2, Num(adj) / 2, Num(adj, "√2") if angle != 45 else Num(adj, "√3")])
    d.step(TAN, "∠C = 90°", [("angle", "∠A", deg(angle)), ("opposite", "BC", None), ("adjacent", "AC", Num(adj))], ("BC", opp))
    return d


FAMILIES: dict[str, Family] = {f.name: f for f in [
    Family("triangle_angle_sum", ((TAS,), (TAS, LP)), ((LP, TAS),), triangle_sum),
    Family("triangle_exterior_angle", ((EXT,), (EXT, LP)), ((LP, EXT),), exterior_angle),
    Family("isosceles_base_angles", ((ISO,), (ISO, TAS)), ((ISO, TAS, LP),), isosceles),
    Family("equilateral_triangle", ((EQ, LP), (EQ, TAS)), ((EQ, TAS, LP),), equilateral),
    Family("pythagorean_theorem", ((PYTH,),), ((PYTH, MID),), pythagorean),
    Family("pythagorean_converse", ((CONV,),), (), pythagorean_converse),
    Family("parallel_corresponding", ((CORR,), (CORR, LP), (CORR, VERT), (CORR, LP, VERT)), ((VERT, CORR),),
           parallel_corresponding),
    Family("parallel_alternate", ((ALT,), (ALT, LP), (ALT, LP, VERT)), ((LP, ALT),), parallel_alternate),
    Family("parallel_co_interior", ((CO,), (CO, VERT)), ((VERT, CO),), parallel_co_interior),
    Family("vertical_angles", ((VERT,), (VERT, LP), (VERT, LP, VERT)), ((LP, VERT),), vertical),
    Family("linear_pair", ((LP,),), (), linear_pair),
    Family("angles_around_point", ((AROUND,),), (), around_point),
    Family("inscribed_angle", ((INSC,), (INSC, TAS)), ((INSC, ARC),), inscribed),
    Family("central_angle", ((ARC,), (ARC, INSC)), (), central),
    Family("angle_in_semicircle", ((SEMI,), (SEMI, TAS)), ((SEMI, TAS, LP),), semicircle),
    Family("tangent_perpendicular", ((TPERP, TAS), (TPERP, PYTH)), (), tangent_perpendicular),
    Family("tangent_segments", ((TSEG,),), ((TPERP, PYTH, TSEG),), tangent_segments),
    Family("cyclic_quadrilateral", ((CYC,), (CYC, LP), (INSC, CYC)), ((INSC, CYC, LP),), cyclic),
    Family("similar_triangles", ((SIM,),), (), similar),
    Family("triangle_midline", ((MID,),), (), midline),
    Family("parallelogram_angles", ((POPP,), (PCONS,), (PCONS, POPP)), ((POPP, PCONS),), parallelogram_angles),
    Family("parallelogram_sides", ((PSIDE,),), (), parallelogram_sides),
    Family("rectangle_diagonals", ((RECT,), (PYTH, RECT)), (), rectangle),
    Family("rhombus_diagonals", ((RHOMB,),), (), rhombus),
    Family("polygon_angles", ((POLY,), (REG,), (REG, LP)), (), polygon),
    Family("circle_measures", ((CIRC,), (AREA,)), (), circle_measure),
    Family("arc_and_sector", ((ARCLEN,), (SECTOR,)), ((INSC, ARCLEN),), arc_sector),
    Family("trig_ratios", ((SIN,), (COS,), (TAN,)), (), trig),
]}
