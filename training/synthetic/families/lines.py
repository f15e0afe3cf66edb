"""Angle families on lines: parallels crossed by a transversal, vertical angles, linear pairs, angles around a point."""
from __future__ import annotations

import math

from ..core import Figure, Picker, polar
from .common import CORR, ALT, CO, VERT, LP, AROUND, deg, new_draft


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
