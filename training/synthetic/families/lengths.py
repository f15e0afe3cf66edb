"""Length, quadrilateral, polygon, circle-measure and trigonometry families."""
from __future__ import annotations

import math
from fractions import Fraction

from ..core import Figure, Num, Picker, along, polar, triangle
from .common import (PYTH, LP, INSC, SIM, MID, POPP, PCONS, PSIDE, RECT, RHOMB, POLY, REG, CIRC, AREA, ARCLEN, SECTOR,
                     SIN, COS, TAN, deg, new_draft)
from .triangles import right_triangle_fig, pick_triple


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
