"""Textbook-like diagrams with Pillow: a Figure (abstract coordinates) -> deterministic PNG bytes.

Black lines on white, letter labels pushed away from the lines that meet at a point, angle arcs,
right-angle marks, parallel arrows and equal-length ticks; rotation, scale, line width and font
size are drawn per problem; a drawing style fixes the font and the rendering (plain or smoothed).
"""
from __future__ import annotations

import io
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from .core import Figure

FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/truetype/liberation"))


@dataclass(frozen=True)
class Style:
    font: str            # TrueType file name, looked up in FONT_DIRS
    width: tuple[int, int]      # line width range in px
    font_px: tuple[int, int]    # label size range in px
    smooth: bool         # draw at 2x and downsample (anti-aliased look)


STYLES = (
    Style("DejaVuSans.ttf", (1, 1), (11, 14), False),
    Style("DejaVuSerif-Italic.ttf", (1, 2), (12, 15), True),
    Style("LiberationSans-Regular.ttf", (1, 2), (12, 15), False),
    Style("LiberationSerif-Italic.ttf", (1, 1), (13, 16), True),
    # held out for test_surface: fonts and renderings never seen in train
    Style("DejaVuSansMono-Bold.ttf", (2, 2), (12, 15), False),
    Style("LiberationSansNarrow-Italic.ttf", (1, 2), (13, 16), True),
)


@lru_cache(maxsize=64)
def _font(name: str, size: int) -> ImageFont.ImageFont:
    for folder in FONT_DIRS:
        path = folder / name
        if path.exists():
            return ImageFont.truetype(str(path), size)
    return ImageFont.load_default(size=size)


def render_png(figure: Figure, style: Style, rng, target_px: tuple[int, int] = (110, 260)) -> bytes:
    """Draw the figure and return PNG bytes (same inputs and rng state -> same bytes)."""
    rotation = math.radians(rng.uniform(-25, 25))
    mirror = rng.random() < 0.3
    size = rng.randint(*target_px)
    width = rng.randint(*style.width)
    font_px = rng.randint(*style.font_px)
    k = 2 if style.smooth else 1

    cos, sin = math.cos(rotation), math.sin(rotation)

    def place(p):
        x, y = (-p[0] if mirror else p[0]), p[1]
        return (x * cos - y * sin, x * sin + y * cos)

    pts = {name: place(p) for name, p in figure.pts.items()}
    xs = [p[0] for p in pts.values()]
    ys = [p[1] for p in pts.values()]
    for centre, radius in figure.circles:
        c = pts[centre]
        xs += [c[0] - radius, c[0] + radius]
        ys += [c[1] - radius, c[1] + radius]
    span = max(max(xs) - min(xs), max(ys) - min(ys), 1e-6)
    scale = size / span
    mark_px = max(7, min(16, size / 12))        # angle-arc radius before supersampling
    margin = int(font_px * 1.3 + mark_px) + rng.randint(0, 6)   # room for labels pushed past arc marks
    w = int((max(xs) - min(xs)) * scale + 2 * margin)
    h = int((max(ys) - min(ys)) * scale + 2 * margin)
    x0, y1 = min(xs), max(ys)

    def px(p):  # abstract (y up) -> image pixels (y down), at the drawing resolution
        return ((p[0] - x0) * scale + margin) * k, ((y1 - p[1]) * scale + margin) * k

    P = {name: px(p) for name, p in pts.items()}
    # plain styles are drawn in 1-bit (like scanned textbook figures; a third of the PNG bytes and
    # encoding time), smoothed ones in grey at twice the size and then box-filtered down
    image = Image.new("L" if k > 1 else "1", (w * k, h * k), 255)
    draw = ImageDraw.Draw(image)
    lw = width * k

    for centre, radius in figure.circles:
        cx, cy = P[centre]
        r = radius * scale * k
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=0, width=lw)
    for a, b in figure.segs:
        draw.line((P[a], P[b]), fill=0, width=lw)
    for name in figure.dots:
        cx, cy = P[name]
        r = (1.2 + width) * k
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=0)

    mark = mark_px * k
    for vertex, a, b, count in figure.arcs:
        _angle_arc(draw, P[vertex], P[a], P[b], mark, count, max(1, lw - (k > 1)), k)
    for vertex, a, b in figure.rights:
        _right_mark(draw, P[vertex], P[a], P[b], mark * 0.75, max(1, lw - (k > 1)))
    for a, b, count in figure.parallels:
        _arrows(draw, P[a], P[b], count, 4 * k, max(1, lw - (k > 1)))
    for a, b, count in figure.ticks:
        _ticks(draw, P[a], P[b], count, 4 * k, max(1, lw - (k > 1)))

    font = _font(style.font, font_px * k)
    neighbours = _neighbours(figure)
    circles = [(P[c], r * scale * k) for c, r in figure.circles]
    for name, (x, y) in P.items():
        if not name[0].isupper():
            continue
        # a marked angle keeps its label out of its middle; with marks, the label also clears their radius
        marked = [_bisector(P[name], P[a], P[b]) for v, a, b, _ in figure.arcs if v == name]
        angle = _label_direction((x, y), [P[n] for n in neighbours.get(name, ())], circles, marked)
        off = font_px * 0.8 * k + (mark * 0.6 if marked else 0)
        pad = font_px * 0.6 * k   # keep every label inside the canvas
        lx = min(max(x + math.cos(angle) * off, pad), w * k - pad)
        ly = min(max(y + math.sin(angle) * off, pad), h * k - pad)
        draw.text((lx, ly), name, font=font, fill=0, anchor="mm")

    for vertex, a, b, text in figure.angle_labels:
        v = P[vertex]
        ta, tb = _direction(v, P[a]), _direction(v, P[b])
        start, end = (ta, tb) if (tb - ta) % 360 <= 180 else (tb, ta)
        middle = math.radians(start + ((end - start) % 360) / 2)
        reach = mark + font_px * 0.9 * k
        draw.text((v[0] + math.cos(middle) * reach, v[1] + math.sin(middle) * reach), text, font=font, fill=0,
                  anchor="mm")

    if k > 1:
        image = image.reduce(k)   # box filter: smooth edges at a fraction of LANCZOS cost
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=False, compress_level=3)
    return out.getvalue()


def _bisector(v, a, b) -> float:
    """Radians (image coordinates) of the middle of the angle a-v-b that the arc mark fills."""
    ta, tb = _direction(v, a), _direction(v, b)
    start, end = (ta, tb) if (tb - ta) % 360 <= 180 else (tb, ta)
    return math.radians(start + ((end - start) % 360) / 2)


def _label_direction(p, others, circles, blocked=()) -> float:
    """Radians (image coordinates) of the middle of the widest empty sector around p, so the label
    sits between the lines and circles that meet there instead of on one of them."""
    rays = [math.atan2(q[1] - p[1], q[0] - p[0]) for q in others if math.dist(p, q) > 1e-6]
    for centre, radius in circles:
        d = math.dist(p, centre)
        if abs(d - radius) < 1.5:           # on the circle: the circle leaves along its tangent
            t = math.atan2(centre[1] - p[1], centre[0] - p[0])
            rays += [t + math.pi / 2, t - math.pi / 2, t]
        elif d < 1e-6:                       # the centre itself: keep off the radii only
            continue
    rays += list(blocked)
    if not rays:
        return -math.pi / 4
    rays = sorted(r % (2 * math.pi) for r in rays)
    best, best_mid = -1.0, 0.0
    for i, r in enumerate(rays):
        nxt = rays[(i + 1) % len(rays)] + (2 * math.pi if i == len(rays) - 1 else 0)
        gap = nxt - r
        if gap > best + 1e-9:
            best, best_mid = gap, r + gap / 2
    return best_mid


def _neighbours(figure: Figure) -> dict[str, list[str]]:
    result: dict[str, list[str]] = {}
    for a, b in figure.segs:
        result.setdefault(a, []).append(b)
        result.setdefault(b, []).append(a)
    # a point inside a segment has both ends as neighbours, so its label leaves the line
    for name, p in figure.pts.items():
        for a, b in figure.segs:
            if name not in (a, b) and _on_segment(p, figure.pts[a], figure.pts[b]):
                result.setdefault(name, []).extend([a, b])
    return result


def _on_segment(p, a, b) -> bool:
    ab = math.dist(a, b)
    return ab > 0 and abs(math.dist(a, p) + math.dist(p, b) - ab) < 1e-6 * max(1.0, ab)


def _direction(v, p) -> float:
    """Pillow's angle convention: degrees clockwise from 3 o'clock in image coordinates."""
    return math.degrees(math.atan2(p[1] - v[1], p[0] - v[0])) % 360


def _angle_arc(draw, v, a, b, radius, count, width, k):
    ta, tb = _direction(v, a), _direction(v, b)
    start, end = (ta, tb) if (tb - ta) % 360 <= 180 else (tb, ta)
    for i in range(count):
        r = radius + i * 3 * k
        draw.arc((v[0] - r, v[1] - r, v[0] + r, v[1] + r), start, end, fill=0, width=width)


def _unit(v, p):
    d = math.dist(v, p) or 1.0
    return ((p[0] - v[0]) / d, (p[1] - v[1]) / d)


def _right_mark(draw, v, a, b, size, width):
    ua, ub = _unit(v, a), _unit(v, b)
    p1 = (v[0] + ua[0] * size, v[1] + ua[1] * size)
    p2 = (v[0] + ub[0] * size, v[1] + ub[1] * size)
    corner = (p1[0] + ub[0] * size, p1[1] + ub[1] * size)
    draw.line((p1, corner, p2), fill=0, width=width)


def _arrows(draw, a, b, count, size, width):
    u = _unit(a, b)
    n = (-u[1], u[0])
    mid = ((a[0] + b[0]) / 2, (a[1] + b[1]) / 2)
    for i in range(count):
        tip = (mid[0] + u[0] * (i * size * 1.2), mid[1] + u[1] * (i * size * 1.2))
        back = (tip[0] - u[0] * size, tip[1] - u[1] * size)
        draw.line(((back[0] + n[0] * size * 0.7, back[1] + n[1] * size * 0.7), tip,
                   (back[0] - n[0] * size * 0.7, back[1] - n[1] * size * 0.7)), fill=0, width=width)


def _ticks(draw, a, b, count, size, width):
    u = _unit(a, b)
    n = (-u[1], u[0])
    mid = ((a[0] + b[0]) / 2, (a[1] + b[1]) / 2)
    for i in range(count):
        shift = (i - (count - 1) / 2) * size * 0.8
        c = (mid[0] + u[0] * shift, mid[1] + u[1] * shift)
        draw.line(((c[0] + n[0] * size, c[1] + n[1] * size), (c[0] - n[0] * size, c[1] - n[1] * size)),
                  fill=0, width=width)
