"""The whitelisted expression grammar that turns relation and Exec text into sympy objects.

Model output and user text are hostile, so nothing here hands a raw string to `eval`, `exec`,
`sympify` or `parse_expr`. Text goes through three gates: a tokenizer that only knows numbers,
names, a fixed set of operators and a few notations (°, %, √, ∠ABC, light LaTeX); a rewrite into
a Python expression whose every name is a placeholder we generated; and a walk over `ast.parse`
of that expression that accepts only arithmetic node types and a fixed function table. Sizes
(length, tokens, nesting, digits, exponents, factorial arguments) are capped before sympy builds
anything, so a hostile expression fails fast instead of eating the CPU of a worker thread.

Conventions: angles are numbers of degrees, so `50°` is 50 and `sin(30)` is sin of 30 degrees;
inverse trig functions answer in degrees. Whether a sin/cos/tan argument is in radians is decided
from its WRITTEN text (it mentions pi or π), never from the built value: a substituted value such
as ∠B = atan(1/3) (built as 180*atan(1/3)/pi degrees) is a number of degrees like any other.
"""
from __future__ import annotations

import ast
import keyword
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Mapping

import sympy

MAX_TEXT_CHARS = 2000      # one expression or relation; an Exec line is a few dozen characters
MAX_TOKENS = 400
MAX_DEPTH = 40             # bracket nesting
MAX_NODES = 600            # AST nodes after the rewrite
MAX_CALLS = 12             # function calls (sin, sqrt, factorial...) in one expression: each costs sympy milliseconds
MAX_DIGITS = 40            # digits in one number literal
MAX_EXPONENT = 1000        # |exponent| of a numeric power
MAX_RESULT_BITS = 20000    # size of any exact rational built on the way (about 6000 digits)
MAX_FACTORIAL = 500
MAX_DEGREE = 1000         # total degree of a symbolic power or product, as if expanded


class MathError(ValueError):
    """Text that is not in the grammar, or too big to evaluate safely. The message says what and where."""


# --- names --------------------------------------------------------------------------------------

_POINT = r"[A-Z][0-9]*'*"
_POINT_RE = re.compile(_POINT)
_SEGMENT_RE = re.compile(rf"^({_POINT})({_POINT})$")


def canonical_name(name: str) -> str:
    """The one spelling of a geometric object: ∠CBA -> ∠ABC, BA -> AB; anything else as written."""
    return _canonical_name(str(name))


@lru_cache(maxsize=8192)   # called for every value substituted into every expression
def _canonical_name(name: str) -> str:
    s = re.sub(r"\s+", "", name)
    if s.startswith("∠"):
        body = s[1:]
        points = _POINT_RE.findall(body)
        if len(points) == 3 and "".join(points) == body and points[0] > points[2]:
            body = "".join(reversed(points))
        return "∠" + body
    if s.startswith("⌒"):
        body = s[1:]
        points = _POINT_RE.findall(body)
        if len(points) == 2 and "".join(points) == body:
            body = "".join(sorted(points))
        return "⌒" + body
    m = _SEGMENT_RE.match(s)
    if m:
        return "".join(sorted(m.groups()))
    return s


def symbol_for(name: str) -> sympy.Symbol:
    """The canonical sympy symbol for an object or role name ("∠ABC" and "∠CBA" give the same one)."""
    return sympy.Symbol(canonical_name(name))


# --- normalisation ----------------------------------------------------------------------------------

_SUPERSCRIPTS = {"⁰": "0", "¹": "1", "²": "2", "³": "3", "⁴": "4", "⁵": "5", "⁶": "6", "⁷": "7", "⁸": "8", "⁹": "9",
                 "⁻": "-"}
_SUPERSCRIPT_RUN = re.compile("[" + "".join(_SUPERSCRIPTS) + "]+")
_CHAR_MAP = str.maketrans({"−": "-", "–": "-", "—": "-", "×": "*", "·": "*", "⋅": "*", "∙": "*", "÷": "/",
                           "π": " pi ", "＝": "=", "≈": "=", "º": "°", "˚": "°", "{": "(", "}": ")",
                           "[": "(", "]": ")"})
_LATEX_WORDS = {"pi": " pi ", "cdot": "*", "times": "*", "div": "/", "circ": "°", "degree": "°", "angle": "∠",
                "sqrt": "√", "left": "", "right": "", "sin": " sin", "cos": " cos", "tan": " tan",
                "alpha": "α", "beta": "β", "gamma": "γ", "theta": "θ", "%": "%", ",": "", ";": "", "!": "",
                "quad": "", "qquad": "", "approx": "=", "mathrm": "", "text": "", "operatorname": ""}
_LATEX_FRAC = re.compile(r"\\[dt]?frac")
_LATEX_CMD = re.compile(r"\\([A-Za-z]+|[%,;! ])")
_ANGLE_WORD = re.compile(r"\b(?:m\s*)?angle\s+(?=[A-Z0-9]\b|[A-Z][0-9]*'*[A-Z])")
_DEGREE_WORD = re.compile(r"(?<=[\d)\s])\s*(?:degrees|degree|deg)\b")


def _brace_group(text: str, start: int) -> tuple[str, int]:
    """The balanced {...} group (or single character) at `start`; returns (inner text, index after it)."""
    while start < len(text) and text[start] == " ":
        start += 1
    if start >= len(text):
        raise MathError("\\frac needs two arguments, e.g. \\frac{1}{2}")
    if text[start] != "{":
        return text[start], start + 1
    depth = 0
    for i in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return text[start + 1:i], i + 1
    raise MathError(f"unbalanced '{{' at character {start}")


def _expand_fracs(text: str) -> str:
    # \frac{a}{b} -> ((a)/(b)); iterative over occurrences, the inner groups are expanded by the recursion
    out, pos = [], 0
    for _ in range(MAX_TOKENS):
        m = _LATEX_FRAC.search(text, pos)
        if not m:
            break
        num, after = _brace_group(text, m.end())
        den, after = _brace_group(text, after)
        out.append(text[pos:m.start()] + f"(({_expand_fracs(num)})/({_expand_fracs(den)}))")
        pos = after
    else:
        raise MathError("too many \\frac")
    return "".join(out) + text[pos:]


def _latex_to_plain(text: str) -> str:
    if "{" in text and _nesting(text.replace("{", "(").replace("}", ")")) > MAX_DEPTH:
        raise MathError(f"brackets nested deeper than {MAX_DEPTH}")
    if re.search(r"\\sqrt\s*\[", text):
        raise MathError("n-th roots (\\sqrt[n]{...}) are not supported; write x^(1/n)")
    text = _expand_fracs(text)
    text = re.sub(r"\^\s*\\circ|\^\s*\{\s*\\circ\s*\}", "°", text)

    def word(m: re.Match) -> str:
        name = m.group(1)
        if name in _LATEX_WORDS:
            return _LATEX_WORDS[name]
        if name == " ":
            return " "
        raise MathError(f"unsupported LaTeX command \\{name}")

    return _LATEX_CMD.sub(word, text).replace("$", " ")


def _nesting(text: str) -> int:
    depth = deepest = 0
    for ch in text:
        if ch == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif ch == ")":
            depth -= 1
    return deepest


def normalize(text: str) -> str:
    """Unicode and light-LaTeX spellings folded into the plain grammar the tokenizer reads."""
    if not isinstance(text, str):
        raise MathError(f"expected text, got {type(text).__name__}")
    if len(text) > MAX_TEXT_CHARS:
        raise MathError(f"expression is {len(text)} characters long; the limit is {MAX_TEXT_CHARS}")
    text = _SUPERSCRIPT_RUN.sub(lambda m: "^(" + "".join(_SUPERSCRIPTS[c] for c in m.group()) + ")", text)
    text = unicodedata.normalize("NFKC", text)
    if "\\" in text:
        text = _latex_to_plain(text)
    text = text.translate(_CHAR_MAP)
    text = _ANGLE_WORD.sub("∠", text)
    text = _DEGREE_WORD.sub("°", text)
    return text


# --- tokens ---------------------------------------------------------------------------------------

_TOKEN_RE = re.compile(
    r"(?P<space>\s+)"
    r"|(?P<number>\d+(?:\.\d*)?|\.\d+)"
    r"|(?P<angle>∠\s*(?:(?:" + _POINT + r"){1,3}(?![A-Za-z0-9_])|\d+|[^\W\d_][0-9]*))"
    r"|(?P<arc>⌒\s*(?:" + _POINT + r"){2,3})"
    r"|(?P<name>[^\W\d]\w*)"
    r"|(?P<op>\*\*|==|=>|<=|>=|!=|[-+*/^(),=°%!√<>])"
)

FUNCTIONS = {  # name in text -> (canonical name, number of arguments)
    "sin": ("sin", 1), "cos": ("cos", 1), "tan": ("tan", 1),
    "asin": ("asin", 1), "acos": ("acos", 1), "atan": ("atan", 1),
    "arcsin": ("asin", 1), "arccos": ("acos", 1), "arctan": ("atan", 1),
    "sqrt": ("sqrt", 1), "abs": ("abs", 1), "factorial": ("factorial", 1),
}
CONSTANTS = {"pi": sympy.pi}


@dataclass(frozen=True)
class _Token:
    kind: str      # number | name | func | const | op
    text: str
    pos: int
    spaced: bool   # whitespace before it


def tokenize(text: str) -> list[_Token]:
    """Tokens of already-normalised text; anything outside the grammar is a MathError naming the column."""
    tokens: list[_Token] = []
    pos, spaced = 0, False
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if not m:
            raise MathError(f"unexpected character {text[pos]!r} at column {pos + 1}")
        kind, value = m.lastgroup, m.group()
        pos = m.end()
        if kind == "space":
            spaced = True
            continue
        if kind == "number" and len(value.replace(".", "")) > MAX_DIGITS:
            raise MathError(f"number at column {m.start() + 1} has more than {MAX_DIGITS} digits")
        if kind in ("angle", "arc"):
            kind, value = "name", canonical_name(value)
        elif kind == "name":
            if value in ("degrees", "degree", "deg"):
                kind, value = "op", "°"
            elif value in FUNCTIONS:
                kind = "func"
            elif value in CONSTANTS:
                kind = "const"
            elif keyword.iskeyword(value) or value.startswith("_"):
                raise MathError(f"{value!r} at column {m.start() + 1} is not allowed in an expression")
            else:
                value = canonical_name(value)
        elif kind == "op" and value in ("<", ">", "<=", ">=", "!="):
            raise MathError(f"inequality {value!r} at column {m.start() + 1} is not supported; write an equation")
        tokens.append(_Token(kind, value, m.start(), spaced))
        spaced = False
        if len(tokens) > MAX_TOKENS:
            raise MathError(f"expression has more than {MAX_TOKENS} tokens")
    return tokens


# --- rewrite into a placeholder-only Python expression ---------------------------------------------

_ENDS_VALUE = {"number", "name", "const"}
_STARTS_VALUE = {"number", "name", "const", "func"}


def _python_source(tokens: list[_Token]) -> tuple[str, dict[str, tuple[str, str]]]:
    """Python source over generated placeholders, plus placeholder -> ("num"|"sym"|"const", text)."""
    out: list[str] = []
    slots: dict[str, tuple[str, str]] = {}
    open_at: list[int] = []       # index in `out` of each unclosed "("
    last_atom = -1                # index in `out` where the last complete operand starts
    pending_sqrt = False
    prev: _Token | None = None

    def slot(kind: str, text: str) -> str:
        key = f"_{kind[0]}{len(slots)}"
        slots[key] = (kind, text)
        return key

    def ends_value(tok: _Token | None) -> bool:
        return tok is not None and (tok.kind in _ENDS_VALUE or tok.text in (")", "°", "%", "!"))

    for tok in tokens:
        starts = tok.kind in _STARTS_VALUE or tok.text in ("(", "√")
        if starts and ends_value(prev):
            if prev.kind == "number" and tok.kind == "number":
                raise MathError(f"two numbers in a row at column {tok.pos + 1}")
            if tok.text == "(" and prev.kind == "name" and not tok.spaced:
                raise MathError(f"unknown function {prev.text!r} at column {prev.pos + 1}; "
                                f"known: {', '.join(sorted(FUNCTIONS))}")
            out.append("*")       # implicit multiplication: 2pi, 2√3, 3(x+1), (a+b)(a-b)
        if pending_sqrt and tok.text != "(" and tok.kind not in ("number", "name", "const"):
            raise MathError(f"√ at column {tok.pos} must be followed by a number, a name or a bracket")

        if tok.kind == "number":
            last_atom = len(out)
            out.append(slot("num", tok.text))
        elif tok.kind == "name":
            last_atom = len(out)
            out.append(slot("sym", tok.text))
        elif tok.kind == "const":
            last_atom = len(out)
            out.append(slot("const", tok.text))
        elif tok.kind == "func":
            out.append(FUNCTIONS[tok.text][0])
        elif tok.text == "(":
            open_at.append(len(out))
            if len(open_at) > MAX_DEPTH:
                raise MathError(f"brackets nested deeper than {MAX_DEPTH} at column {tok.pos + 1}")
            out.append("(")
        elif tok.text == ")":
            if not open_at:
                raise MathError(f"unmatched ')' at column {tok.pos + 1}")
            start = open_at.pop()
            out.append(")")
            last_atom = start - 1 if start > 0 and out[start - 1] in _FUNCTION_NAMES else start
        elif tok.text == "°":
            if not ends_value(prev):
                raise MathError(f"'°' at column {tok.pos + 1} must follow a number or a bracket")
        elif tok.text in ("%", "!"):
            if not ends_value(prev) or last_atom < 0:
                raise MathError(f"{tok.text!r} at column {tok.pos + 1} must follow a number or a bracket")
            if tok.text == "%":
                out[last_atom:] = ["(", *out[last_atom:], "/", slot("num", "100"), ")"]
            else:
                out[last_atom:] = ["factorial", "(", *out[last_atom:], ")"]
        elif tok.text == "√":
            out.append("sqrt")
        elif tok.text in ("^", "**"):
            out.append("**")
        elif tok.text in ("=", "==", "=>"):
            raise MathError(f"'{tok.text}' at column {tok.pos + 1}: an expression cannot contain a relation")
        else:  # + - * / ,
            out.append(tok.text)

        if pending_sqrt and tok.text != "(":
            out[last_atom:] = ["(", *out[last_atom:], ")"]
            last_atom -= 1        # the operand is now "sqrt ( ... )"
        pending_sqrt = tok.text == "√"
        prev = tok
    if pending_sqrt:
        raise MathError("√ at the end of the expression needs an argument")
    if open_at:
        raise MathError("unclosed '(': add the missing ')'")
    return " ".join(out), slots


_FUNCTION_NAMES = {canonical for canonical, _ in FUNCTIONS.values()}
_ARITY = {canonical: arity for canonical, arity in FUNCTIONS.values()}


@lru_cache(maxsize=4096)
def _parse_cached(text: str) -> tuple[ast.expr, tuple[tuple[str, tuple[str, str]], ...]]:
    tokens = tokenize(normalize(text))
    if not tokens:
        raise MathError("empty expression")
    source, slots = _python_source(tokens)
    try:
        tree = ast.parse(source, mode="eval")
    except (SyntaxError, MemoryError, RecursionError, ValueError) as err:
        raise MathError(f"cannot read {text[:80]!r}: malformed expression ({getattr(err, 'msg', err)})") from None
    nodes = sum(1 for _ in ast.walk(tree))
    if nodes > MAX_NODES:
        raise MathError(f"expression has {nodes} parts; the limit is {MAX_NODES}")
    calls = sum(isinstance(n, ast.Call) for n in ast.walk(tree))
    if calls > MAX_CALLS:
        raise MathError(f"expression calls {calls} functions; the limit is {MAX_CALLS}")
    return tree.body, tuple(slots.items())


# --- building sympy objects with guards ---------------------------------------------------------------

_BINOPS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow)


def _number_bits(value: sympy.Expr) -> int:
    """An upper bound on the bits an exact number without symbols holds: its integers' bit lengths added.
    3^499*√3 counts the 791 bits of 3^499; a power of it multiplies them, which is what _power bounds."""
    if value.is_Rational:
        return max(int(value.p).bit_length(), int(value.q).bit_length())
    if value.is_Float:
        return 64
    return sum(_number_bits(atom) for atom in value.atoms(sympy.Rational, sympy.Float)) + 1


def _degree_bound(value: sympy.Expr) -> int:
    """An upper bound on the total degree `value` would have if expanded: (x + y + 1)^999 gives 999.
    Functions count as their argument's degree (nothing expands through them)."""
    if not value.free_symbols:
        return 0
    if value.is_Symbol:
        return 1
    if value.is_Pow:
        if value.exp.is_Number:
            return int(_degree_bound(value.base) * max(1, abs(float(value.exp))))
        return _degree_bound(value.base) + _degree_bound(value.exp)
    parts = [_degree_bound(arg) for arg in value.args]
    return sum(parts) if value.is_Mul else max(parts, default=0)


def degree_bound(value: sympy.Expr) -> int:
    """Public name of the expansion-degree bound (the checker's solver refuses to expand beyond it)."""
    return _degree_bound(value)


def _check_size(value: sympy.Expr, where: str) -> sympy.Expr:
    if value.is_Rational or value.is_Symbol:
        if value.is_Rational and _number_bits(value) > MAX_RESULT_BITS:
            raise MathError(f"{where}: number too large to handle safely")
        return value
    if not value.free_symbols and _number_bits(value) > MAX_RESULT_BITS:
        raise MathError(f"{where}: number too large to handle safely")
    if value.free_symbols and _degree_bound(value) > MAX_DEGREE:
        raise MathError(f"{where}: degree above {MAX_DEGREE}; too large to handle safely")
    return value


def _short(value: sympy.Expr) -> str:
    if _number_bits(value) > 200:
        return f"(a number of about {int(_number_bits(value) * 0.30103)} digits)"
    text = str(value)
    return text if len(text) <= 24 else text[:10] + "..." + text[-6:] + f" ({len(text)} characters)"


def _power(base: sympy.Expr, exp: sympy.Expr) -> sympy.Expr:
    """base^exp, refused BEFORE sympy computes it when the result would be too large: on every base (a root
    such as √3^999 is 3^499·√3, a number like any other), and on symbolic bases by the degree the power gives
    ((x^1000)^1000 is x^1000000, whatever value x takes later)."""
    if exp.is_Number:
        if abs(exp) > MAX_EXPONENT:
            raise MathError(f"exponent {_short(exp)} is larger than {MAX_EXPONENT}")
        size = abs(float(exp))
        if base.free_symbols:
            if _degree_bound(base) * size > MAX_DEGREE:
                raise MathError(f"power of degree above {MAX_DEGREE} ({_short(exp)} on a power or product); "
                                "too large to handle safely")
        elif base not in (0, 1, -1) and _number_bits(base) * size > MAX_RESULT_BITS:
            raise MathError(f"power {_short(base)}^{_short(exp)} is too large to compute safely")
    elif not exp.free_symbols:
        # a numeric exponent that sympy has not folded (e.g. 2^(√2*1000)): bound it numerically
        if _number_bits(exp) > MAX_RESULT_BITS:
            raise MathError("exponent is too large")
        try:
            size = abs(complex(sympy.N(exp, 15)))
        except (TypeError, ValueError):
            raise MathError("exponent cannot be evaluated") from None
        if size > MAX_EXPONENT:
            raise MathError("exponent is too large")
        if base.free_symbols:
            if _degree_bound(base) * size > MAX_DEGREE:
                raise MathError(f"power of degree above {MAX_DEGREE}; too large to handle safely")
        elif base not in (0, 1, -1) and _number_bits(base) * size > MAX_RESULT_BITS:
            raise MathError("power is too large to compute safely")
    return sympy.Pow(base, exp)


def _mentions_pi(node: ast.expr, slots: Mapping[str, tuple[str, str]]) -> bool:
    """Does the written text of this argument contain pi/π? (Decided on the text, before substitution.)"""
    return any(isinstance(n, ast.Name) and slots.get(n.id) == ("const", "pi") for n in ast.walk(node))


# sympy writes sin/cos/tan of a rational multiple of π exactly when it can; for most denominators that costs
# from 30 ms to half a second (sin 21° becomes nested radicals) and gives nothing a student reads. Exact values
# are kept for multiples of π/12, π/10 and π/5 (15°, 18°, 36°...); the others stay as sin(7π/60), evaluated
# numerically when a verdict needs them.
_EXACT_TRIG_DENOMINATORS = frozenset({1, 2, 3, 4, 5, 6, 10, 12})
_TRIG = {"sin": sympy.sin, "cos": sympy.cos, "tan": sympy.tan}


def _trig(func, angle: sympy.Expr) -> sympy.Expr:
    coefficient = angle / sympy.pi
    slow = coefficient.is_Rational and coefficient.q not in _EXACT_TRIG_DENOMINATORS
    return func(angle, evaluate=not slow)


def _call(name: str, arg: sympy.Expr, radians: bool = False) -> sympy.Expr:
    if name in ("sin", "cos", "tan"):
        angle = arg if radians else arg * sympy.pi / 180
        return _trig(_TRIG[name], angle)
    if name == "asin":
        return sympy.asin(arg) * 180 / sympy.pi
    if name == "acos":
        return sympy.acos(arg) * 180 / sympy.pi
    if name == "atan":
        return sympy.atan(arg) * 180 / sympy.pi
    if name == "sqrt":
        return sympy.sqrt(arg)
    if name == "abs":
        return sympy.Abs(arg)
    if name == "factorial":
        if arg.is_Number:
            if not (arg.is_Integer and 0 <= arg <= MAX_FACTORIAL):
                raise MathError(f"factorial({_short(arg)}) is outside 0..{MAX_FACTORIAL}")
            return sympy.factorial(arg)
        if arg.free_symbols:
            return sympy.factorial(arg)
        raise MathError("factorial needs a whole number")
    raise MathError(f"unknown function {name!r}")   # unreachable: the walker checks the table


def _build(node: ast.expr, slots: Mapping[str, tuple[str, str]], values: Mapping[str, sympy.Expr], depth: int = 0
           ) -> sympy.Expr:
    if depth > 2 * MAX_TOKENS:
        raise MathError("expression nested too deeply")
    if isinstance(node, ast.BinOp) and isinstance(node.op, _BINOPS):
        left = _build(node.left, slots, values, depth + 1)
        right = _build(node.right, slots, values, depth + 1)
        if isinstance(node.op, ast.Add):
            result = left + right
        elif isinstance(node.op, ast.Sub):
            result = left - right
        elif isinstance(node.op, ast.Mult):
            result = left * right
        elif isinstance(node.op, ast.Div):
            if right == 0:
                raise MathError("division by zero")
            result = left / right
        else:
            result = _power(left, right)
        return _check_size(result, "result")
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
        operand = _build(node.operand, slots, values, depth + 1)
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.Call):
        if not (isinstance(node.func, ast.Name) and node.func.id in _ARITY) or node.keywords:
            raise MathError("only the functions " + ", ".join(sorted(FUNCTIONS)) + " may be called")
        if len(node.args) != _ARITY[node.func.id]:
            raise MathError(f"{node.func.id} takes {_ARITY[node.func.id]} argument(s), got {len(node.args)}")
        argument = node.args[0]
        return _call(node.func.id, _build(argument, slots, values, depth + 1), _mentions_pi(argument, slots))
    if isinstance(node, ast.Name) and node.id in slots:
        kind, text = slots[node.id]
        if kind == "num":
            return sympy.Rational(text)
        if kind == "const":
            return CONSTANTS[text]
        return values[text] if text in values else sympy.Symbol(text)
    raise MathError(f"{type(node).__name__} is not allowed in an expression")


def substitute(expr: sympy.Expr, values: Mapping[sympy.Symbol, sympy.Expr]) -> sympy.Expr:
    """`expr` with symbols replaced by values, rebuilt node by node under the same size guards as to_sympy:
    xreplace would let x^1000 with x = 10^30, or factorial(x) with x = 10^7, compute without bound."""
    if not values or not (expr.free_symbols & set(values)):
        return expr
    if expr.is_Symbol:
        return values[expr]
    args = [substitute(arg, values) for arg in expr.args]
    if expr.is_Pow:
        return _check_size(_power(args[0], args[1]), "substituted value")
    if expr.is_Mul or expr.is_Add:
        if sum(_number_bits(a) for a in args if not a.free_symbols) > 2 * MAX_RESULT_BITS:
            raise MathError("substituted value: number too large to handle safely")
        return _check_size(expr.func(*args), "substituted value")
    if isinstance(expr, sympy.factorial):
        return _call("factorial", args[0])
    if expr.func in (sympy.sin, sympy.cos, sympy.tan):
        return _trig(expr.func, args[0])
    return _check_size(expr.func(*args), "substituted value")


def _canonical_values(values: Mapping | None) -> dict[str, sympy.Expr]:
    if not values:
        return {}
    out = {}
    for key, value in values.items():
        name = key.name if isinstance(key, sympy.Symbol) else canonical_name(str(key))
        if not isinstance(value, sympy.Basic):
            value = to_sympy(str(value)) if isinstance(value, str) else sympy.nsimplify(value, rational=True)
        out[name] = value
    return out


def to_sympy(text: str, values: Mapping | None = None) -> sympy.Expr:
    """Parse one expression. `values` (name or Symbol -> value) are substituted while building, so the
    size guards also cover what substitution produces."""
    tree, slots = _parse_cached(text)
    return _build(tree, dict(slots), _canonical_values(values))


@lru_cache(maxsize=8192)
def name_of(text: str) -> str | None:
    """The canonical name when `text` reads as one object or role name ("∠CBA " -> "∠ABC"), else None.
    A bare name is read off the parse tree without building sympy objects (cheap enough to call per
    Map entry); anything else is built, so "+x" or "1*x" still count as the name x."""
    try:
        tree, slots = _parse_cached(text)
        if isinstance(tree, ast.Name) and dict(slots).get(tree.id, ("",))[0] == "sym":
            return dict(slots)[tree.id][1]
        expr = _build(tree, dict(slots), {})
    except MathError:
        return None
    return expr.name if isinstance(expr, sympy.Symbol) else None


_RELATION_SPLIT = re.compile(r"(?<![=<>!＝])[=＝≈](?![=>＝])")


def split_relation(text: str) -> list[str]:
    """The sides of "a = b = c" (top-level '=' only; '=>' and '==' are not split here)."""
    if not isinstance(text, str):
        raise MathError(f"expected text, got {type(text).__name__}")
    if len(text) > MAX_TEXT_CHARS:
        raise MathError(f"relation is {len(text)} characters long; the limit is {MAX_TEXT_CHARS}")
    return _RELATION_SPLIT.split(text)


def parse_relation(text: str, values: Mapping | None = None) -> list[sympy.Eq]:
    """"a + b = 180" -> [Eq(a + b, 180)]; "a = b = c" -> [Eq(a, b), Eq(b, c)]. Eqs are left unevaluated."""
    sides = split_relation(text)
    if len(sides) < 2:
        raise MathError(f"{text[:80]!r} is not a relation: it has no '='")
    exprs = []
    for i, side in enumerate(sides):
        if not side.strip():
            raise MathError(f"side {i + 1} of {text[:80]!r} is empty")
        try:
            exprs.append(to_sympy(side, values))
        except MathError as err:
            raise MathError(f"side {i + 1} ({side.strip()[:60]!r}): {err}") from None
    return [sympy.Eq(a, b, evaluate=False) for a, b in zip(exprs, exprs[1:])]
