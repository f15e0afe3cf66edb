"""Chat messages for the tutor: a system prompt listing the retrieved theorems and asking for the v1 solution
format, then the diagram and the question. The processor's own chat template turns them into tokens, so the
same messages serve the tiny model, the real 7B and an OpenAI-compatible server.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, field

from model.choices import CHOICE_LETTERS

# GeoQA questions are < 300 characters and long MATH problems ~3k. Longer text is refused rather than cut:
# a truncated question silently changes what is asked.
MAX_QUESTION_CHARS = 8000
MAX_CHOICE_CHARS = 500

FORMAT_INSTRUCTIONS = """\
Solve the problem as a chain of theorem applications. For each step write four lines:
Theorem: <theorem id> | <theorem name>
Cond: <why the theorem's conditions hold in this figure>
Map: <role> = <object> = <value>; <role> = <object>   (leave out the value when it is unknown)
Exec: <the theorem's relation over its roles> => <object> = <value>
After the last step write one line:
Answer: <final value>, followed by the choice letter in parentheses when choices are given.
Use the theorem ids listed below when one applies."""

SYSTEM_INTRO = "You are a geometry tutor who teaches by theorems."

# A short id of the prompt's fixed text: a checkpoint records the version it was trained with (model.profile) and
# an evaluation run records the one it prompted with, since any change to these words changes results.
PROMPT_VERSION = "v1-" + hashlib.sha256((SYSTEM_INTRO + "\n" + FORMAT_INSTRUCTIONS).encode()).hexdigest()[:8]


class PromptError(ValueError):
    """A question or choice that cannot be put in front of the model; the message says which and why."""


# Text that looks like a chat-template control token (<|im_end|>, <|image_pad|>, ...) would be tokenized as
# the real special token: a user could close their turn or claim image slots. A zero-width space keeps the
# text readable but makes it ordinary characters.
_CONTROL_TOKEN = re.compile(r"<\|")
_CONTROL_CHARS = "".join(chr(c) for c in range(32) if chr(c) not in "\n\t") + "\x7f"


def clean_text(text: str, what: str, limit: int) -> str:
    """Normalise user text (NFC, no control characters, no template tokens) and enforce a length limit."""
    if not isinstance(text, str):
        raise PromptError(f"{what} must be text, got {type(text).__name__}")
    text = unicodedata.normalize("NFC", text).translate({ord(c): None for c in _CONTROL_CHARS}).strip()
    if not text:
        raise PromptError(f"{what} is empty; type the question about the diagram (e.g. 'Find ∠ABC.')")
    if len(text) > limit:
        raise PromptError(
            f"{what} is {len(text)} characters, above the {limit}-character limit; shorten it to the question itself"
        )
    return _CONTROL_TOKEN.sub("<\u200b|", text)


def _as_theorem(item) -> dict:
    # Accept theorem dicts and retrieval hits (objects with a .theorem dict), so callers pass Bank results as-is.
    theorem = getattr(item, "theorem", item)
    if not isinstance(theorem, dict) or not theorem.get("id"):
        raise PromptError(f"theorem entries need at least an 'id' (got {item!r:.80})")
    return theorem


def _as_list(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value.strip() else []
    return [str(v) for v in value if str(v).strip()]


def format_theorem(theorem: dict) -> str:
    """One retrieved theorem as the model sees it: id | name, statement, conditions, roles, relation."""
    lines = [f"- {theorem['id']} | {theorem.get('name', '')}".rstrip(" |")]
    if theorem.get("statement"):
        lines.append(f"  Statement: {theorem['statement']}")
    conditions = _as_list(theorem.get("conditions"))
    if conditions:
        lines.append(f"  Conditions: {'; '.join(conditions)}")
    roles = theorem.get("roles") or {}
    if isinstance(roles, dict) and roles:
        described = [f"{name} ({info.get('meaning', '')})" if isinstance(info, dict) else name for name, info in roles.items()]
        lines.append(f"  Roles: {', '.join(described)}")
    relations = _as_list(theorem.get("relations"))
    if relations:
        lines.append(f"  Relation: {'; '.join(relations)}")
    return "\n".join(lines)


def system_prompt(theorems=()) -> str:
    parts = [SYSTEM_INTRO, FORMAT_INSTRUCTIONS]
    listed = [format_theorem(_as_theorem(t)) for t in theorems]
    parts.append("Retrieved theorems:\n" + "\n".join(listed) if listed else "No theorems were retrieved; use standard geometry theorems.")
    return "\n\n".join(parts)


def format_choices(choices, letters: str = CHOICE_LETTERS) -> str:
    if len(choices) > len(letters):
        raise PromptError(f"{len(choices)} choices given; at most {len(letters)} are supported")
    cleaned = [clean_text(str(c), f"choice {letters[i]}", MAX_CHOICE_CHARS) for i, c in enumerate(choices)]
    return "Choices:\n" + "\n".join(f"{letters[i]}. {c}" for i, c in enumerate(cleaned))


def build_messages(question: str, choices=None, image=None, theorems=(), system: str | None = None,
                   letters: str = CHOICE_LETTERS, instruction: str | None = None) -> list[dict]:
    """Chat messages in the Qwen2.5-VL / OpenAI content-list shape, from theorems already chosen.

    The tutor's callers use problem_messages, which chooses the theorems and letters from a serving profile;
    this lower layer is for tests and benches that need a fixed prompt. `image` is anything
    model.images.load_image accepts (path, bytes, PIL image, data URL); it is loaded and checked when the
    messages are turned into model inputs. `theorems` are theorem dicts or retrieval hits.
    """
    question = clean_text(question, "question", MAX_QUESTION_CHARS)
    if instruction:
        question = f"{clean_text(instruction, 'instruction', MAX_CHOICE_CHARS)}\n{question}"
    text = question if not choices else f"{question}\n{format_choices(list(choices), letters)}"
    user_content = []
    if image is not None:
        user_content.append({"type": "image", "image": image})
    user_content.append({"type": "text", "text": text})
    return [
        {"role": "system", "content": [{"type": "text", "text": system if system is not None else system_prompt(theorems)}]},
        {"role": "user", "content": user_content},
    ]


# ---------------------------------------------------------------------------------------------- the one builder


@dataclass
class ProblemPrompt:
    """A problem as put in front of a model: its messages, the theorems they list, and the point renaming to undo
    in the model's answer (model.point_names; empty for a model that knows every letter)."""

    messages: list[dict]
    theorems: list[dict] = field(default_factory=list)
    renaming: object = None  # model.point_names.Renaming

    @property
    def theorem_ids(self) -> list[str]:
        return [t["id"] for t in self.theorems]

    def restore(self, output: str) -> str:
        """The model's text with the problem's own point names back."""
        return self.renaming.restore(output) if self.renaming is not None else output


def retrieval_query(question: str, choices, profile) -> str:
    """The text the bank is searched with, by the profile's recipe."""
    if profile.retrieval_query == "question+choices" and choices:
        return question + " " + " ".join(str(c) for c in choices)
    return question


def prompt_theorems(question: str, choices, bank, profile) -> list[dict]:
    """The theorems the prompt lists: the bank's top profile.prompt_theorems for the profile's query."""
    if profile.prompt_theorems <= 0:
        return []
    if bank is None:
        raise PromptError(f"this checkpoint was trained with {profile.prompt_theorems} retrieved theorems in its "
                          "prompt, but no theorem bank was given; open one with theorem_bank.open_bank()")
    hits = bank.retrieve(retrieval_query(question, choices, profile), k=profile.prompt_theorems,
                         mode=profile.retrieval_mode)
    return [_as_theorem(hit) for hit in hits]


def problem_prompt(question: str, choices, image, bank, profile, instruction: str | None = None) -> ProblemPrompt:
    """problem_messages with what a caller needs to read the answer back (theorems listed, point renaming)."""
    from model.point_names import rename_problem

    choices = list(choices) if choices else None
    theorems = prompt_theorems(question, choices, bank, profile)
    renaming, shown_question, shown_choices = rename_problem(question, choices, profile.point_names)
    messages = build_messages(shown_question, choices=shown_choices, image=image, theorems=theorems,
                              letters=profile.choice_letters, instruction=instruction)
    return ProblemPrompt(messages=messages, theorems=theorems, renaming=renaming)


def problem_messages(question: str, choices, image, bank, profile, instruction: str | None = None) -> list[dict]:
    """THE function that turns a problem into chat messages, for training, evaluation, the experiment and the app.

    Retrieves profile.prompt_theorems theorems from `bank` by the profile's query recipe, renames point letters
    the checkpoint never saw into its trained ones (profile.point_names), and letters the choices with
    profile.choice_letters. A caller that shows the answer must undo the renaming: use problem_prompt(...),
    whose .restore(output) does it. `instruction` (training only: a build's prompt-diversity phrasing) opens
    the user turn.
    """
    return problem_prompt(question, choices, image, bank, profile, instruction).messages
