"""``spacebot``: ask (text, --json, -k, stdin), validate, eval and chat, with the real bundled model.

Most tests call ``bot.cli.main`` in-process with the session's encoder and index (loaded once); one
runs the installed console script end to end.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot import cli
from bot.core import engine as engine_module
from bot.core.embedding import Encoder
from bot.core.engine import Engine
from tests.conftest import SHIPPED_KNOWLEDGE
from tests.support.kb import (
    STORYLINE_LATEST,
    mini_documents,
    passage,
    write_documents,
    write_malformed_yaml,
    write_mini_kb,
)

QUICK_START = "When is Russia leaving the ISS?"
ANSWER_KEYS = {"question", "answered", "answer", "passages", "history", "suggestions", "kb_version", "latency_ms"}
PASSAGE_KEYS = {"id", "title", "text", "date", "score", "source"}


def _russia_iss_chain() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The russia-iss passage nothing supersedes, and every passage on its chain before it."""
    passages = yaml.safe_load((SHIPPED_KNOWLEDGE / "russia-iss.yaml").read_text(encoding="utf-8"))["passages"]
    by_id = {p["id"]: p for p in passages}
    superseded = {target for p in passages for target in p.get("supersedes", [])}
    heads = [p for p in passages if p.get("supersedes") and p["id"] not in superseded]
    head = max(heads, key=lambda p: str(p["date"]))
    earlier, frontier = [], list(head.get("supersedes", []))
    while frontier:
        pid = frontier.pop()
        if pid in by_id and by_id[pid] not in earlier:
            earlier.append(by_id[pid])
            frontier.extend(by_id[pid].get("supersedes", []))
    return head, earlier


@pytest.fixture
def run_cli(
    shipped_engine: Engine,
    real_encoder: Encoder,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> Any:
    """``run_cli(*argv, stdin=None) -> (exit code, stdout, stderr)`` over the shipped knowledge."""
    loads: list[object] = []

    def load_encoder(settings: object, **_: object) -> Encoder:
        loads.append(settings)
        return real_encoder

    monkeypatch.setattr(engine_module, "load_encoder", load_encoder)
    monkeypatch.chdir(tmp_path)  # no stray .env, no relative index/ in the repository
    index_dir = shipped_engine.settings.index_dir

    def run(*argv: str, stdin: str | None = None, knowledge: Path = SHIPPED_KNOWLEDGE) -> tuple[int, str, str]:
        if stdin is not None:
            monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        capsys.readouterr()
        code = cli.main(["--knowledge", str(knowledge), "--index", str(index_dir), "--encoder", "torch", *argv])
        out, err = capsys.readouterr()
        return code, out, err

    run.encoder_loads = loads
    return run


def _assert_answer_contract(data: dict[str, Any]) -> None:
    assert set(data) >= ANSWER_KEYS
    assert isinstance(data["answered"], bool)
    assert isinstance(data["latency_ms"], int | float)
    assert isinstance(data["suggestions"], list)
    for item in data["passages"]:
        assert set(item) >= PASSAGE_KEYS
        assert set(item["source"]) >= {"publisher", "title", "url"}
        assert item["source"]["url"].startswith(("http://", "https://"))
        dt.date.fromisoformat(item["date"])
        assert isinstance(item["score"], float)
    for item in data["history"]:
        dt.date.fromisoformat(item["date"])


# -- ask --------------------------------------------------------------------------------------------


def test_ask_json_prints_one_object_with_the_answer_contract(run_cli: Any, shipped_engine: Engine) -> None:
    code, out, _ = run_cli("ask", "--json", QUICK_START)
    assert code == 0
    lines = out.strip().splitlines()
    assert len(lines) == 1
    data = json.loads(lines[0])
    _assert_answer_contract(data)
    assert data["question"] == QUICK_START
    assert data["answered"] is True
    assert data["passages"]
    assert data["answer"] == data["passages"][0]["text"]
    assert data["kb_version"] == shipped_engine.snapshot.version
    assert data["suggestions"] == []


def test_ask_json_leads_with_the_latest_russia_iss_passage_and_dated_history(run_cli: Any) -> None:
    head, earlier = _russia_iss_chain()
    _, out, _ = run_cli("ask", "--json", QUICK_START)
    data = json.loads(out)
    assert data["passages"][0]["id"] == head["id"]
    history_ids = [h["id"] for h in data["history"]]
    assert set(history_ids) <= {p["id"] for p in earlier}
    years = {h["date"][:4] for h in data["history"]}
    assert {"2021", "2022"} <= years, history_ids
    dates = [h["date"] for h in data["history"]]
    assert dates == sorted(dates, reverse=True)


def test_ask_k_limits_the_passages(run_cli: Any) -> None:
    for k in ("1", "2"):
        code, out, _ = run_cli("ask", "--json", "-k", k, QUICK_START)
        assert code == 0
        data = json.loads(out)
        assert 1 <= len(data["passages"]) <= int(k)


def test_ask_json_declines_an_out_of_scope_question_saying_why_and_what_is_covered(run_cli: Any) -> None:
    code, out, _ = run_cli("ask", "--json", "How do I bake sourdough bread?")
    assert code == 0
    data = json.loads(out)
    _assert_answer_contract(data)
    assert data["answered"] is False
    assert data["decline_reason"] == "out_of_scope"
    assert "space policy" in data["message"]
    assert data["passages"] == []
    assert data["premise"] is None


def test_ask_text_shows_the_premise_note_before_the_lead(run_cli: Any) -> None:
    code, out, _ = run_cli("ask", "When did Russia quit the space station?")
    assert code == 0
    first_line = out.splitlines()[0]
    assert first_line.startswith("No: as of ")
    assert re.search(r"Russia (?:has not left|did not leave) the ISS", first_line)


def test_ask_text_declines_small_talk_with_example_questions(run_cli: Any) -> None:
    code, out, _ = run_cli("ask", "thanks!")
    assert code == 0
    assert out.startswith("[not_a_question]")
    assert "Try asking:" in out and "/topics" in out


def test_ask_json_stdin_answers_each_line_with_one_json_line_and_loads_the_model_once(run_cli: Any) -> None:
    questions = [QUICK_START, "wen is roscomos leaving iss", "What's the best pizza topping?",
                 "Who is the head of Roscosmos?"]
    code, out, _ = run_cli("ask", "--json", "-", stdin="\n".join(questions) + "\n")
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == len(questions)
    answers = [json.loads(line) for line in lines]
    for data in answers:
        _assert_answer_contract(data)
    assert [a["question"] for a in answers] == questions
    assert [a["answered"] for a in answers] == [True, True, False, True]
    assert len(run_cli.encoder_loads) == 1


def test_ask_json_stdin_keeps_one_output_line_per_input_line_even_blank_or_crlf(run_cli: Any) -> None:
    code, out, _ = run_cli("ask", "--json", "-", stdin=f"{QUICK_START}\r\n\r\nWho is the head of Roscosmos?\n")
    assert code == 0
    answers = [json.loads(line) for line in out.splitlines()]
    assert [a["question"] for a in answers] == [QUICK_START, "", "Who is the head of Roscosmos?"]
    assert [a["answered"] for a in answers] == [True, False, True]


FOLLOW_UP = "who will deorbit it?"  # not understood on its own, a follow-up after QUICK_START


def test_ask_json_stdin_takes_plain_lines_and_question_objects_with_context(run_cli: Any) -> None:
    lines = [QUICK_START, json.dumps({"question": FOLLOW_UP, "context": [QUICK_START]}),
             json.dumps({"question": FOLLOW_UP}), f'  {{"question": "{FOLLOW_UP}", "context": []}}']
    code, out, _ = run_cli("ask", "--json", "-", stdin="\n".join(lines) + "\n")
    assert code == 0
    answers = [json.loads(line) for line in out.splitlines()]
    assert len(answers) == 4
    for data in answers:
        _assert_answer_contract(data)
    assert [a["question"] for a in answers] == [QUICK_START, FOLLOW_UP, FOLLOW_UP, FOLLOW_UP]
    assert [a["context_used"] for a in answers] == [None, QUICK_START, None, None]
    assert answers[1]["answered"] is True
    assert [a["decline_reason"] for a in answers[2:]] == ["not_understood", "not_understood"]


def test_ask_json_stdin_malformed_json_lines_get_error_lines_and_the_stream_goes_on(run_cli: Any) -> None:
    lines = ['{"question": "When is',
             json.dumps({"question": 3}),
             json.dumps({"question": FOLLOW_UP, "context": QUICK_START}),
             json.dumps({"context": [QUICK_START]}),
             json.dumps({"question": FOLLOW_UP, "context": [QUICK_START, 7]}),
             QUICK_START]
    code, out, _ = run_cli("ask", "--json", "-", stdin="\n".join(lines) + "\n")
    assert code == 0
    results = [json.loads(line) for line in out.splitlines()]
    assert len(results) == len(lines)
    errors = results[:5]
    assert [e["line"] for e in errors] == [1, 2, 3, 4, 5]
    assert all(set(e) == {"error", "line"} and e["error"].startswith(f"line {e['line']}: ") for e in errors)
    assert "not valid JSON" in errors[0]["error"]
    assert '"question" must be a string' in errors[1]["error"] and '"question"' in errors[3]["error"]
    assert '"context" must be a list' in errors[2]["error"] and '"context"' in errors[4]["error"]
    assert results[5]["question"] == QUICK_START and results[5]["answered"] is True


def test_ask_json_stdin_line_with_bytes_that_are_not_utf8_is_answered_and_the_stream_goes_on(
    run_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = f"{QUICK_START}\n".encode() + b"\xff\xfe bad \xc3\x28\n" + f"{QUICK_START}\n".encode()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8"))  # strict, like stdin
    code, out, _ = run_cli("ask", "--json", "-")
    assert code == 0
    answers = [json.loads(line) for line in out.splitlines()]
    assert len(answers) == 3
    assert [a["answered"] for a in answers] == [True, False, True]
    assert "bad" in answers[1]["question"] and "\ufffd" in answers[1]["question"]


def test_ask_prints_the_latest_position_first_then_earlier_positions_with_dates(run_cli: Any) -> None:
    head, earlier = _russia_iss_chain()
    code, out, _ = run_cli("ask", QUICK_START)
    assert code == 0
    lines = [line for line in out.splitlines() if line.strip()]
    assert head["title"] in lines[0]
    assert str(head["date"]) in lines[0]
    assert " ".join(head["text"].split()) in out
    shown = [p for p in earlier if p["title"] in out]
    dated_lines = [line for line in lines if any(p["title"] in line for p in shown)]
    assert any(str(p["date"]).startswith("2021") for p in shown), out
    assert any(str(p["date"]).startswith("2022") for p in shown), out
    assert all(any(str(p["date"]) in line for p in shown) for line in dated_lines)
    assert out.index(head["title"]) < min(out.index(p["title"]) for p in shown)
    assert head["source"]["url"] in out


def test_ask_with_broken_knowledge_and_no_index_exits_1_naming_the_file(
    run_cli: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    knowledge = write_mini_kb(tmp_path / "broken-kb")
    write_malformed_yaml(knowledge, "broken.yaml")
    code = cli.main(["--knowledge", str(knowledge), "--index", str(tmp_path / "empty-index"), "ask", "hello"])
    _, err = capsys.readouterr()
    assert code == 1
    assert "broken.yaml" in err


# -- validate ---------------------------------------------------------------------------------------


def test_validate_valid_folder_prints_counts_and_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    knowledge = write_mini_kb(tmp_path / "kb")
    code = cli.main(["validate", str(knowledge)])
    out = capsys.readouterr().out
    assert code == 0
    assert "3 topics" in out
    assert "7 passages" in out
    assert "0 warning" in out


def test_validate_prints_warnings_and_still_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    documents = mini_documents()
    copy = dict(passage(documents, "debris-2022-09-fcc-five-year-rule"))
    copy["id"] = "debris-copy"
    documents["space-debris.yaml"]["passages"].append(copy)
    code = cli.main(["validate", str(write_documents(tmp_path / "kb", documents))])
    out = capsys.readouterr().out
    assert code == 0
    assert "warning" in out and "debris-copy" in out and "near-duplicate" in out
    assert "1 warning" in out


def test_validate_lists_every_error_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    documents = mini_documents()
    passage(documents, "debris-2022-09-fcc-five-year-rule")["source"]["url"] = "ftp://example.org/x"
    passage(documents, STORYLINE_LATEST)["supersedes"] = ["no-such-id"]
    knowledge = write_documents(tmp_path / "kb", documents)
    write_malformed_yaml(knowledge, "broken.yaml")
    code = cli.main(["validate", str(knowledge)])
    out = capsys.readouterr().out
    assert code == 1
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert len(errors) == 3, out
    assert any("broken.yaml" in e for e in errors)
    assert any("space-debris.yaml" in e and "source.url" in e for e in errors)
    assert any("russia-station.yaml" in e and "no-such-id" in e for e in errors)
    assert "3 error(s)" in out


def test_validate_missing_folder_exits_1_saying_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["validate", str(tmp_path / "nowhere")])
    out = capsys.readouterr().out
    assert code == 1
    assert "not found" in out


def test_validate_console_script_checks_the_shipped_knowledge(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("spacebot")
    result = subprocess.run([str(script), "validate", str(SHIPPED_KNOWLEDGE)], capture_output=True, text=True,
                            cwd=tmp_path, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1].startswith("ok: ")


# -- eval and chat ----------------------------------------------------------------------------------


def test_eval_prints_metrics_and_every_miss(run_cli: Any, tmp_path: Path) -> None:
    head, _ = _russia_iss_chain()
    questions = {"questions": [
        {"q": QUICK_START, "expect": [head["id"]], "latest": head["id"]},
        {"q": "What is the capital of Australia?", "category": "out_of_scope"},
        {"q": "Who is the head of Roscosmos?", "expect": ["no-such-passage-id"]},
    ]}
    path = tmp_path / "questions.yaml"
    path.write_text(yaml.safe_dump(questions), encoding="utf-8")
    code, out, _ = run_cli("eval", str(path))
    assert code == 0
    for metric in ("hit@1", "hit@3", "MRR", "out of scope declined", "false premise", "definitions", "follow-ups"):
        assert metric in out
    assert "in scope (2): hit@1 0.500 (1/2)  hit@3 0.500 (1/2)" in out
    assert "out of scope declined 1.000 (1/1)" in out
    misses = [line for line in out.splitlines() if line.startswith("miss")]
    assert len(misses) == 1, out
    assert "Who is the head of Roscosmos?" in misses[0] and "no-such-passage-id" in misses[0]


def test_chat_answers_each_question_until_an_empty_line(run_cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    head, _ = _russia_iss_chain()
    inputs = iter([QUICK_START, "What's the best pizza topping?", "", "never asked"])
    prompts: list[str] = []

    def fake_input(prompt: str = "") -> str:
        prompts.append(prompt)
        return next(inputs)

    monkeypatch.setattr("builtins.input", fake_input)
    code, out, _ = run_cli("chat")
    assert code == 0
    assert len(prompts) == 3
    assert head["title"] in out
    assert "[out_of_scope]" in out  # the pizza question is declined, its context notwithstanding
    assert next(inputs) == "never asked"


def test_chat_follow_up_uses_the_earlier_question_and_new_starts_over(
    run_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    inputs = iter([QUICK_START, FOLLOW_UP, "/new", FOLLOW_UP, ""])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(inputs))
    code, out, _ = run_cli("chat")
    assert code == 0
    following = out.index(f"Following up on: {QUICK_START}")
    restart = out.index("New conversation")
    assert out.count("Following up on:") == 1
    assert following < restart < out.index("[not_understood]")


def test_chat_ends_cleanly_at_end_of_input(run_cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def eof(prompt: str = "") -> str:
        raise EOFError

    monkeypatch.setattr("builtins.input", eof)
    code, _, _ = run_cli("chat")
    assert code == 0


# -- the installed console script, end to end -------------------------------------------------------


def test_console_script_ask_json_stdin_end_to_end(shipped_engine: Engine, tmp_path: Path) -> None:
    head, _ = _russia_iss_chain()
    env = {**os.environ, "SPACEBOT_KNOWLEDGE_DIR": str(SHIPPED_KNOWLEDGE),
           "SPACEBOT_INDEX_DIR": str(shipped_engine.settings.index_dir), "SPACEBOT_ENCODER": "torch",
           "SPACEBOT_LOG_LEVEL": "WARNING"}
    script = Path(sys.executable).with_name("spacebot")
    result = subprocess.run([str(script), "ask", "--json", "-"], input=f"{QUICK_START}\nWhat time is it in Tokyo?\n",
                            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(answers) == 2
    assert answers[0]["passages"][0]["id"] == head["id"]
    assert answers[1]["answered"] is False


def test_invalid_setting_is_one_clear_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SPACEBOT_TOP_K", "lots")
    code = cli.main(["validate", str(SHIPPED_KNOWLEDGE)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip().splitlines() == [err.strip()]
    assert "top_k" in err and "Traceback" not in err


def test_embedding_model_that_is_not_a_local_folder_is_one_clear_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SPACEBOT_EMBEDDING_MODEL", str(tmp_path / "no-such-model"))
    code = cli.main(["--knowledge", str(SHIPPED_KNOWLEDGE), "--index", str(tmp_path / "index"),
                     "--encoder", "onnx", "ask", "When is Russia leaving the ISS?"])
    err = capsys.readouterr().err
    assert code == 2
    assert "no-such-model" in err and "Traceback" not in err


def test_missing_knowledge_folder_fails_before_any_model_is_loaded(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def refuse(*_: object, **__: object) -> Encoder:
        raise AssertionError("the model must not be loaded for a knowledge base that cannot serve")

    monkeypatch.setattr(engine_module, "load_encoder", refuse)
    code = cli.main(["--knowledge", str(tmp_path / "none"), "--index", str(tmp_path / "index"), "ask", "hi"])
    assert code == 1
    assert "knowledge directory not found" in capsys.readouterr().err
