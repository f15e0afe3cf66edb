"""Turning theorem text and user text into plain search words, the same way for both sides.

User text is hostile: FTS5 operators, quotes and brackets must never reach the MATCH grammar. The
query builder therefore keeps only word characters and quotes every token, so the FTS5 parser sees
nothing but string literals joined by OR.
"""
from __future__ import annotations

import re

# Geometry notation in problem text (FormalGeo, GeoQA) carries meaning the tokenizer would drop:
# FTS5's unicode61 tokenizer treats these symbols as separators.
SYMBOL_WORDS = {
    "∠": " angle ",
    "△": " triangle ",
    "▵": " triangle ",
    "⊙": " circle ",
    "○": " circle ",
    "∥": " parallel ",
    "//": " parallel ",
    "⊥": " perpendicular ",
    "▱": " parallelogram ",
    "□": " quadrilateral ",
    "⌒": " arc ",
    "⁀": " arc ",
    "≌": " congruent ",
    "≅": " congruent ",
    "∽": " similar ",
    "∼": " similar ",
    "°": " degree ",
    "π": " pi ",
    "√": " sqrt ",
    "²": " squared ",
    "³": " cubed ",
    "%": " percent ",
    "!": " factorial ",
}
_SYMBOL_RE = re.compile("|".join(re.escape(s) for s in sorted(SYMBOL_WORDS, key=len, reverse=True)))
_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CJK_RUN = re.compile(f"[{_CJK}]+")
# A word: letters/digits (any script except CJK, which is handled as bigrams) or an underscore-free run.
_WORD = re.compile(rf"[^\W_{_CJK}]+|[{_CJK}]+", re.UNICODE)
# Point names in problem text (ABC, DE, O) say nothing about which theorem applies.
_POINT_NAME = re.compile(r"^[A-Z]{1,5}[0-9]?$")
MAX_QUERY_TOKENS = 48
MEANINGFUL_NUMBERS = frozenset({"90", "180", "360"})

STOPWORDS = frozenset(
    """a an the of and or to in on at by for with as is are be been it its this that these those from
    into than then there their if so such what which who whom how when where find value shown diagram figure
    given let we our you your has have had do does did not no nor can may must shall will would should
    each other any all some one two three known point points""".split()
)


def valid_text(text: str) -> str:
    """`text` with every code point that is not a character (a lone UTF-16 surrogate, as a browser or a
    badly decoded file can send) replaced by U+FFFD; a surrogate pair is joined into its character.
    SQLite, the encoder and the page all need encodable text."""
    if text.isascii():
        return text
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def cjk_bigrams(run: str) -> list[str]:
    """Chinese text has no spaces: index overlapping character pairs so a phrase matches its parts."""
    if len(run) == 1:
        return [run]
    return [run[i : i + 2] for i in range(len(run) - 1)]


def words(text: str, drop_point_names: bool = False) -> list[str]:
    """Lower-case search words of a text, with notation spelled out and CJK runs split into bigrams."""
    text = _SYMBOL_RE.sub(lambda m: SYMBOL_WORDS[m.group(0)], text.replace("_", " "))
    out: list[str] = []
    for match in _WORD.finditer(text):
        token = match.group(0)
        if _CJK_RUN.fullmatch(token):
            out.extend(cjk_bigrams(token))
            continue
        if drop_point_names and _POINT_NAME.match(token):
            continue
        out.append(token.lower())
    return out


def index_text(*parts) -> str:
    """The text stored in an FTS column: the search words joined by spaces."""
    flat: list[str] = []
    for part in parts:
        if isinstance(part, (list, tuple)):
            flat.extend(str(p) for p in part)
        elif part:
            flat.append(str(part))
    return " ".join(words(" ; ".join(flat)))


def query_terms(text: str, limit: int = MAX_QUERY_TOKENS) -> list[str]:
    """Distinct, meaningful query words in order of first appearance (bounded, so a 100 kB query is cheap)."""
    seen: dict[str, None] = {}
    for token in words(text[:20000], drop_point_names=True):
        # Given numbers (50, 3.5) are noise for choosing a theorem; 90, 180 and 360 name right,
        # straight and full angles. Measured on the FormalGeo7k train split: +0.02 recall@10.
        if token in STOPWORDS or (token.isdigit() and token not in MEANINGFUL_NUMBERS):
            continue
        if token not in seen:
            seen[token] = None
            if len(seen) >= limit:
                break
    return list(seen)


def cjk_phrases(text: str, limit: int = 8) -> list[str]:
    """CJK runs of the query as bigram phrases, so the exact run outranks documents sharing only bigrams."""
    phrases = []
    for run in _CJK_RUN.findall(text[:20000]):
        if len(run) > 2:
            phrases.append(" ".join(cjk_bigrams(run)))
        if len(phrases) >= limit:
            break
    return phrases


def fts_query(terms: list[str], phrases: list[str] = ()) -> str:
    """An FTS5 MATCH expression that can only mean 'any of these words or phrases'.

    Every token is a double-quoted FTS5 string (inner quotes doubled), so operators, brackets,
    column filters, NEAR, * and - in user text are inert characters inside a string literal.
    """
    quoted = ['"' + term.replace('"', '""') + '"' for term in terms]
    quoted += ['"' + phrase.replace('"', '""') + '"' for phrase in phrases]
    return " OR ".join(quoted)


def stem(token: str) -> str:
    """A rough stem for explaining matches (the index itself uses FTS5's porter stemmer)."""
    for suffix in ("ities", "ing", "es", "s", "al", "ar", "ly"):
        if len(token) > len(suffix) + 3 and token.endswith(suffix):
            return token[: -len(suffix)]
    return token
