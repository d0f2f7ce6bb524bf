"""The question set: tuning and holdout files of questions with the answer each one expects.

Files are data (``questions/tuning/*.yaml``, ``questions/holdout/*.yaml``), validated with pydantic;
every problem names its file and question.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

Category = Literal[
    "answerable", "out_of_scope", "not_a_question", "not_covered", "false_premise", "definition", "not_understood",
]
TUNING = "tuning"
HOLDOUT = "holdout"


class QuestionFileError(ValueError):
    """A question file does not validate; the message names the file and the question."""


class Question(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    text: str = Field(alias="q", min_length=1)
    category: Category = "answerable"
    expect: tuple[str, ...] = ()
    latest: str | None = None
    near: bool = False
    acceptable: tuple[str, ...] = ()
    context: tuple[str, ...] = ()
    standalone: bool = False  # with a context that must not change the answer
    source: str = ""

    @model_validator(mode="after")
    def _expectations_fit_the_category(self) -> Question:
        needs_expect = self.category in ("answerable", "false_premise", "definition")
        if needs_expect and not self.expect:
            raise ValueError(f"a {self.category} question needs 'expect'")
        if not needs_expect and self.expect:
            raise ValueError(f"a {self.category} question has no 'expect' (use 'acceptable' for not_covered)")
        return self

    @property
    def declines(self) -> bool:
        """True when the right answer is a decline."""
        return self.category in ("out_of_scope", "not_a_question", "not_covered", "not_understood")


class _QuestionFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    questions: list[dict[str, object]]


def load_questions(path: Path) -> list[Question]:
    """Questions from one YAML file, or from every ``*.yaml`` file in a folder (not recursive)."""
    files = sorted(path.glob("*.yaml")) if path.is_dir() else [path]
    if not files:
        raise QuestionFileError(f"{path}: no question files")
    questions: list[Question] = []
    for file in files:
        questions.extend(_read_file(file))
    return questions


def _read_file(file: Path) -> list[Question]:
    try:
        document = _QuestionFile.model_validate(yaml.safe_load(file.read_text(encoding="utf-8")) or {})
    except (OSError, UnicodeDecodeError, yaml.YAMLError, ValidationError) as exc:
        raise QuestionFileError(f"{file}: {str(exc).splitlines()[0][:200]}") from None
    questions = []
    for position, entry in enumerate(document.questions, start=1):
        try:
            questions.append(Question.model_validate({**entry, "source": f"{file.parent.name}/{file.name}"}))
        except ValidationError as exc:
            where = f"{file}: question #{position} ({str(entry.get('q', ''))[:60]!r})"
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'entry'}: {e['msg']}" for e in exc.errors())
            raise QuestionFileError(f"{where}: {problems}") from None
    return questions


def question_set(root: Path, split: str) -> Path:
    """``questions/tuning`` or ``questions/holdout`` under ``root``."""
    if split not in (TUNING, HOLDOUT):
        raise ValueError(f"split must be {TUNING!r} or {HOLDOUT!r}, not {split!r}")
    return root / split
