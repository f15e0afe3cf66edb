"""Circle families: inscribed and central angles, the semicircle, tangents, cyclic quadrilaterals."""
from __future__ import annotations

import math

from ..core import Figure, Num, Picker, along, polar
from .common import TAS, PYTH, LP, INSC, ARC, SEMI, TPERP, TSEG, CYC, deg, new_draft
from .triangles import pick_triple


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
