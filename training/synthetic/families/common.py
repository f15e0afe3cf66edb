"""What every family module shares: the core theorem ids, the Family record, and the draft and triangle helpers."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..core import Draft, Figure, Num, along, triangle

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
