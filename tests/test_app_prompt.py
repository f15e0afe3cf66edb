"""The app prompts a trained model the way it was trained: no theorems for a model trained without them."""
from app.serving import Tutor, trained_prompt_theorems

THEOREM = {"id": "vertical_angles", "name": "Vertical angles", "statement": "Opposite angles are equal.",
           "conditions": ["two lines cross"], "roles": {}, "relations": ["angle2 = angle1"]}


def system_text(messages) -> str:
    content = messages[0]["content"]
    return content if isinstance(content, str) else " ".join(part.get("text", "") for part in content)


def test_prompt_theorems_come_from_the_checkpoint(tmp_path):
    (tmp_path / "train_config.yaml").write_text("data:\n  prompt_theorems: 0\n", encoding="utf-8")
    assert trained_prompt_theorems(tmp_path) == 0
    assert trained_prompt_theorems(tmp_path / "missing") is None


def test_tutor_withholds_theorems_the_model_never_saw():
    seen = []
    for limit, expect_listed in ((0, False), (None, True)):
        tutor = Tutor(lambda messages: iter([seen.append(messages) or "ok"]), {}, prompt_theorems=limit)
        assert list(tutor.stream("Find ∠1.", theorems=[THEOREM])) == ["ok"]
        assert ("vertical_angles" in system_text(seen[-1])) is expect_listed
