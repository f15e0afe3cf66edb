"""Categories a benchmark's accuracy is broken down by: GeoQA topic, FormalGeo7k source and level,
MATH subject and level, synthetic split and family.

`categories(record, benchmark)` returns {axis: value} from the record alone, so a summary can be
recomputed from predictions.jsonl without the dataset.
"""
from __future__ import annotations

import re

# GeoQA has no topic field in the English release; the first matching keyword group names the topic.
# Ordered from the most specific figure to the most generic, because a circle problem usually also
# mentions triangles and angles.
GEOQA_TOPICS: list[tuple[str, tuple[str, ...]]] = [
    ("circle", ("circle", "⊙", "arc", "chord", "tangent", "radius", "diameter", "inscribed", "circumference", "sector", "cone")),
    ("similarity", ("similar", "∽", "shadow", "ratio", "proportional")),
    ("parallel lines", ("parallel", "∥", "//")),
    ("quadrilateral", ("parallelogram", "rectangle", "rhombus", "square", "trapezoid", "quadrilateral")),
    ("right triangle / trigonometry", ("right triangle", "hypotenuse", "sin", "cos", "tan", "slope", "pythag", "90.0", "perpendicular", "⊥")),
    ("triangle", ("triangle", "△", "bisector", "midpoint", "isosceles", "equilateral")),
    ("angles", ("angle", "∠")),
]


def geoqa_topic(question: str) -> str:
    text = question.lower()
    for topic, words in GEOQA_TOPICS:
        for word in words:
            # Short words must match whole words ("sin" is not "using"); symbols match anywhere.
            if word.isalpha() and len(word) <= 4:
                if re.search(rf"\b{re.escape(word)}\b", text):
                    return topic
            elif word in text:
                return topic
    return "other"


def _formalgeo_source(meta: dict, record_id: str) -> str:
    if meta.get("origin"):  # set by training/loaders/formalgeo.py
        return str(meta["origin"])
    source = str(meta.get("source_id") or meta.get("source") or record_id)
    # "GeoQA-123", "GeoQA-angle-7", "Geometry3k-2401" -> the collection name
    match = re.match(r"([A-Za-z0-9]+(?:-angle)?)", source)
    return match.group(1) if match else "unknown"


def _level(meta: dict, *keys: str) -> str:
    for key in keys:
        value = meta.get(key)
        if value not in (None, ""):
            match = re.search(r"\d+", str(value))
            return match.group(0) if match else str(value)
    return "unknown"


def categories(record, benchmark: str) -> dict[str, str]:
    """The category values of one problem record for the given benchmark."""
    meta = record.meta or {}
    if benchmark == "geoqa":
        return {"topic": geoqa_topic(record.question)}
    if benchmark == "formalgeo":
        return {"source": _formalgeo_source(meta, record.id), "level": _level(meta, "problem_level", "level")}
    if benchmark == "math":
        subject = meta.get("subject") or meta.get("type") or "unknown"
        return {"subject": str(subject), "level": _level(meta, "level")}
    if benchmark == "synthetic":
        family = meta.get("family") or (record.knowledge_points[0] if record.knowledge_points else "unknown")
        return {"split": record.split, "family": str(family)}
    return {}
