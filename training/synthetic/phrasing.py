"""Question phrasings: the same facts and target worded in several ways (some held out for test_surface)."""
from __future__ import annotations

PHRASINGS = (
    "As shown in the figure, {given}. Find {ask}.",
    "In the figure, {given}. What is {ask}?",
    "Given that {given}, then {ask} is ()",
    "As shown, {given}, then {ask} is equal to ()",
    "{Given}. Calculate {ask}.",
    # held out for test_surface
    "From the diagram we know that {given}. Determine {ask}.",
    "Look at the figure: {given}. How large is {ask}?",
    "Suppose {given}. Then what does {ask} equal?",
)


def phrase(phrasing_id: int, given: str, ask: str) -> str:
    template = PHRASINGS[phrasing_id]
    return template.format(given=given, ask=ask, Given=given[:1].upper() + given[1:])
