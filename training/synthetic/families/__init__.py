"""The theorem families of the synthetic curriculum: each builds a problem with its gold steps.

A family is tied to core theorems (theorem_bank/seeds/geometry_core.yaml) and offers chains of
1-3 steps in which a later step uses an earlier result. `build(rng, pick, chain)` returns a `Draft`
written with canonical point letters (A-H, O centre, P outside point); all other text is lowercase
so the generator can relabel points with a plain character translation.
"""
from __future__ import annotations

from .common import (TAS, EXT, ISO, EQ, PYTH, CONV, CORR, ALT, CO, VERT, LP, AROUND, INSC, ARC, SEMI, TPERP, TSEG,
                     CYC, SIM, MID, POPP, PCONS, PSIDE, RECT, RHOMB, POLY, REG, CIRC, AREA, ARCLEN, SECTOR, SIN, COS,
                     TAN, Family)
from .triangles import triangle_sum, exterior_angle, isosceles, equilateral, pythagorean, pythagorean_converse
from .lines import (parallel_corresponding, parallel_alternate, parallel_co_interior, vertical, linear_pair,
                    around_point)
from .circles import inscribed, central, semicircle, tangent_perpendicular, tangent_segments, cyclic
from .lengths import (similar, midline, parallelogram_angles, parallelogram_sides, rectangle, rhombus, polygon,
                      circle_measure, arc_sector, trig)

__all__ = ["FAMILIES", "Family"]

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
