"""Triangle families: angle sum, exterior angle, isosceles, equilateral, Pythagoras and its converse."""
from __future__ import annotations

import math

from ..core import Figure, Num, Picker, along, triangle
from .common import TAS, EXT, ISO, EQ, PYTH, CONV, LP, MID, TRIPLES, deg, new_draft, tri_figure


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
