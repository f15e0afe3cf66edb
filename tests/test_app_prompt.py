"""The app prompts a trained model the way it was trained: the theorems its serving profile says, no others."""
from app.serving import Tutor
from model.profile import default_profile


class ListBank:
    """A bank whose retrieval returns its theorems in order (the prompt's listing is what is tested here)."""

    def __init__(self, theorems):
        self.theorems = theorems

    def retrieve(self, text, k=5, mode="hybrid"):
        return self.theorems[:k]


class Recorder:
    def __init__(self):
        self.seen = []

    def stream(self, messages, options=None):
        self.seen.append(messages)
        yield "ok"


THEOREM = {"id": "vertical_angles", "name": "Vertical angles", "statement": "Opposite angles are equal.",
           "conditions": ["two lines cross"], "roles": {}, "relations": ["angle2 = angle1"]}


def system_text(messages) -> str:
    content = messages[0]["content"]
    return content if isinstance(content, str) else " ".join(part.get("text", "") for part in content)


def test_tutor_lists_as_many_theorems_as_the_profile_says():
    for trained_with, expect_listed in ((0, False), (2, True)):
        backend = Recorder()
        tutor = Tutor(backend, {}, profile=default_profile().replace(prompt_theorems=trained_with))
        assert list(tutor.stream("Find ∠1.", bank=ListBank([THEOREM]))) == ["ok"]
        assert ("vertical_angles" in system_text(backend.seen[-1])) is expect_listed
