"""``spacebot``: the command-line shell over the answer engine.

Every command imports what it needs inside its own function, so ``spacebot --help`` and
``spacebot validate`` start without loading torch, FAISS or the model.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import logging
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from bot.core.config import EngineSettings, describe_settings_error
from bot.core.errors import EncoderUnavailableError

if TYPE_CHECKING:
    from bot.core.engine import Engine
    from bot.core.models import Answer, Passage
    from bot.discord_bot.config import DiscordSettings as Settings

log = logging.getLogger(__name__)

QUESTIONS = Path("questions")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    args.whole_process = argv is None  # run as the program (``spacebot ...``), not called by other code
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        settings = _settings(args)
    except ValueError as exc:  # pydantic's ValidationError: a bad SPACEBOT_* value
        print(f"spacebot: invalid setting: {describe_settings_error(exc)}", file=sys.stderr)
        return 2
    level = settings.log_level if args.command == "run" or args.verbose else "WARNING"
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)  # INFO: its AVX512/AVX2 probes, ModuleNotFoundError
    try:
        return int(args.handler(args, settings))
    except KeyboardInterrupt:
        return 130
    except EncoderUnavailableError as exc:
        print(f"spacebot: {exc}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spacebot", description="Dated, cited answers to space-policy questions.")
    parser.add_argument("--knowledge", type=Path, help="knowledge folder (default: SPACEBOT_KNOWLEDGE_DIR)")
    parser.add_argument("--index", type=Path, help="index folder (default: SPACEBOT_INDEX_DIR or index/)")
    parser.add_argument("--encoder", choices=["onnx", "torch"], help="query encoder (default: SPACEBOT_ENCODER)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at SPACEBOT_LOG_LEVEL, not only warnings")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    ask = commands.add_parser(
        "ask",
        help="answer a question ('-' reads one per line from stdin: text, or "
             '{"question": ..., "context": [earlier questions]})',
    )
    ask.add_argument("question", nargs="+", help="the question, or '-' for stdin")
    ask.add_argument("-k", type=int, default=None, help="how many passages to return")
    ask.add_argument("--json", action="store_true", help="print one JSON object per question")
    ask.set_defaults(handler=_ask)

    validate = commands.add_parser("validate", help="check the knowledge files and list every problem")
    validate.add_argument("directory", nargs="?", type=Path, help="knowledge folder to check")
    validate.set_defaults(handler=_validate)

    schema = commands.add_parser("schema", help="print the knowledge files' JSON Schema (for editors)")
    schema.set_defaults(handler=_schema)

    build = commands.add_parser("build", help="build or update the index (incremental)")
    build.add_argument("--force", action="store_true", help="re-embed every passage")
    build.set_defaults(handler=_build)

    evaluate = commands.add_parser("eval", help="score the engine on a question set, per category")
    evaluate.add_argument("path", nargs="?", type=Path, default=None,
                          help="YAML file or folder (default: questions/holdout, or --split)")
    evaluate.add_argument("--split", choices=["holdout", "tuning"], default="holdout", help="which question set")
    evaluate.set_defaults(handler=_eval)

    fit = commands.add_parser("fit", help="fit the judge (answerability, scope, premise) on questions/tuning")
    fit.add_argument("path", nargs="?", type=Path, default=QUESTIONS / "tuning", help="tuning questions")
    fit.set_defaults(handler=_fit)

    chat = commands.add_parser("chat", help="ask questions in a terminal loop (follow-ups keep context, /new resets)")
    chat.set_defaults(handler=_chat)

    run = commands.add_parser("run", help="run the Discord bot (needs DISCORD_TOKEN)")
    run.set_defaults(handler=_run)

    sync = commands.add_parser("sync", help="publish the slash commands (globally, or to one guild)")
    sync.add_argument("--guild", type=int, default=None, help="guild id (default: global)")
    sync.set_defaults(handler=_sync)

    bench = commands.add_parser("bench", help="benchmark the engine against the naive baseline")
    bench.add_argument("--quick", action="store_true", help="a few-second smoke run (CI)")
    bench.add_argument("--scale", type=int, default=None, help="synthetic index scale test with N passages")
    bench.add_argument(
        "--output", type=Path, default=None,
        help="where to write the report (default: BENCHMARKS.md; with --quick, bench-quick.md in the index folder)",
    )
    bench.set_defaults(handler=_bench)

    from bot.cli_moderation import add_commands

    add_commands(commands)
    return parser


def _settings(args: argparse.Namespace) -> Settings | EngineSettings:
    overrides = {
        key: value
        for key, value in (("knowledge_dir", args.knowledge), ("index_dir", args.index), ("encoder", args.encoder))
        if value is not None
    }
    if args.command == "ask":  # the engine's settings are all it reads: a cold start skips the Discord shell's
        return EngineSettings(**overrides)
    from bot.discord_bot.config import DiscordSettings as Settings

    return Settings(**overrides)


def _open_engine(settings: EngineSettings) -> Engine | None:
    from bot.core.engine import Engine, KnowledgeError

    try:
        return Engine.open(settings)
    except KnowledgeError as exc:
        print(f"The knowledge base in {settings.knowledge_dir} does not validate:", file=sys.stderr)
        for issue in exc.issues:
            print(f"  error: {issue}", file=sys.stderr)
        return None


# -- ask ------------------------------------------------------------------------------------


def _ask(args: argparse.Namespace, settings: EngineSettings) -> int:
    with _quick_start():
        engine = _open_engine(settings)
    try:
        if engine is None:
            return 1
        if args.question == ["-"]:
            return _ask_stream(engine, sys.stdin, sys.stdout, args.k)
        answer = engine.answer(" ".join(args.question), args.k)
        if args.json:
            print(json.dumps(answer.to_dict(), ensure_ascii=False))
        else:
            print(format_answer(answer))
        return 0
    finally:
        if not args.whole_process or args.question == ["-"]:
            gc.unfreeze()  # a process that goes on: its start-up objects are collectable again


@contextlib.contextmanager
def _quick_start() -> Iterator[None]:
    """Open the engine without two costs that buy a command-line process nothing.

    - Python's cyclic garbage collector would walk the few hundred thousand long-lived objects that
      the imports and the engine make, again and again: about a tenth of a cold ``spacebot ask``.
      They are frozen once the engine is open (not traversed while questions are answered) and
      collection resumes, so ``ask -`` collects as usual. ``spacebot ask "..."`` exits right after
      its answer and leaves them frozen: exiting then skips one more walk over them (about 0.1 s);
      ``ask -``, and a caller that passed its own arguments to ``main``, get them unfrozen.
    - OpenBLAS would start a thread per core as numpy loads: one question's products with a few
      hundred passage vectors are far too small to share out. Only in a process that has not loaded
      numpy yet (a fresh ``spacebot ask``), and an explicit setting wins.
    """
    if "numpy" not in sys.modules:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


def _ask_stream(engine: Engine, source: TextIO, sink: TextIO, k: int | None) -> int:
    """One JSON line per input line, the model loaded once.

    A line is a question as plain text (a blank line is declined), or a JSON object
    ``{"question": "...", "context": ["earlier question", ...]}`` (oldest first) for a follow-up. A
    line that starts with ``{`` but is not such an object gets ``{"error": "line N: ...", "line": N}``
    and the stream goes on; so does a line with bytes that are not UTF-8.
    """
    _tolerate_undecodable_bytes(source)
    for number, line in enumerate(source, start=1):
        try:
            question, context = parse_stream_line(line.rstrip("\r\n"))
        except StreamLineError as exc:
            result: dict[str, object] = {"error": f"line {number}: {exc}", "line": number}
        else:
            result = engine.answer(question, k, context).to_dict()
        sink.write(json.dumps(result, ensure_ascii=False) + "\n")
        sink.flush()
    return 0


class StreamLineError(ValueError):
    """A line of ``spacebot ask -`` that looks like JSON but is not a question object."""


def parse_stream_line(line: str) -> tuple[str, tuple[str, ...]]:
    """The question and its context (earlier questions, oldest first) on one input line."""
    if not line.strip().removeprefix("\ufeff").startswith("{"):
        return line, ()
    try:
        data = json.loads(line.strip().removeprefix("\ufeff"))
    except json.JSONDecodeError as exc:
        raise StreamLineError(f"not valid JSON ({exc.msg} at column {exc.colno})") from exc
    if not isinstance(data, dict):
        raise StreamLineError("expected a JSON object")
    question, context = data.get("question"), data.get("context", [])
    if not isinstance(question, str):
        raise StreamLineError('"question" must be a string')
    if not isinstance(context, list) or not all(isinstance(item, str) for item in context):
        raise StreamLineError('"context" must be a list of strings (earlier questions, oldest first)')
    return question, tuple(context)


def _tolerate_undecodable_bytes(source: TextIO) -> None:
    """Bytes that are not UTF-8 become U+FFFD instead of ending the stream with a UnicodeDecodeError."""
    reconfigure = getattr(source, "reconfigure", None)
    if callable(reconfigure):
        reconfigure(errors="replace")


def format_answer(answer: Answer) -> str:
    """The answer as a person reads it in a terminal: premise note, lead, earlier positions, sources."""
    if not answer.answered:
        return _format_decline(answer)
    lead = answer.passages[0].passage
    lines = [f"{answer.premise.note}", ""] if answer.premise else []
    lines += [f"{lead.title} ({lead.date.isoformat()})", "", f"{answer.lead} [1]", ""]
    cited = list({p.id: p for p in [*(r.passage for r in answer.passages), *answer.history]}.values())
    number = {passage.id: n for n, passage in enumerate(cited, start=1)}
    if answer.history:
        lines.append("Earlier positions:")
        lines += [f"  {p.date.isoformat()}  {p.title} [{number[p.id]}]" for p in answer.history]
        lines.append("")
    lines.append("Sources:")
    for passage in cited:
        lines += _citation(number[passage.id], passage)
    footer = f"knowledge base {answer.kb_version}, confidence {answer.confidence:.2f}, {answer.latency_ms:.0f} ms"
    if answer.context_used:
        lines.append(f"\nFollowing up on: {answer.context_used}")
    lines.append(f"\n({footer})")
    return "\n".join(lines)


_SUGGESTION_HEADINGS = {
    "not_a_question": "Try asking:",
    "not_covered": "Nearest topics I cover:",
}


def _format_decline(answer: Answer) -> str:
    lines = [f"[{answer.decline_reason or 'declined'}] {answer.message}"]
    if answer.suggestions:
        lines.append(_SUGGESTION_HEADINGS.get(answer.decline_reason or "", "Related:"))
        lines += [f"  - {s}" for s in answer.suggestions]
    return "\n".join(lines)


def _citation(number: int, passage: Passage) -> list[str]:
    source = passage.source
    return [f"  [{number}] {source.publisher}: {source.title} ({passage.date.isoformat()})", f"      {source.url}"]


# -- validate / build / eval ----------------------------------------------------------------


def _validate(args: argparse.Namespace, settings: Settings) -> int:
    from bot.core.knowledge import load_knowledge

    directory = args.directory or settings.knowledge_dir
    result = load_knowledge(directory)
    for warning in result.warnings:
        print(f"warning: {warning}")
    if not result.ok:
        for error in result.errors:
            print(f"error: {error}")
        print(f"{result.stats.summary()} (among the passages that validate)")
        print(f"{len(result.errors)} error(s) in {result.files} file(s); nothing was changed.")
        return 1
    assert result.knowledge is not None
    knowledge = result.knowledge
    print(result.stats.summary())
    print(f"ok: {len(knowledge.topics)} topics, {len(knowledge)} passages in {result.files} files, "
          f"{len(result.warnings)} warning(s); version {knowledge.version}")
    return 0


def _schema(args: argparse.Namespace, settings: Settings) -> int:
    from bot.core.knowledge_schema import knowledge_json_schema

    print(json.dumps(knowledge_json_schema(), indent=2, ensure_ascii=False))
    return 0


def _build(args: argparse.Namespace, settings: Settings) -> int:
    from bot.core.encoders import load_encoder
    from bot.core.knowledge import load_knowledge
    from bot.core.store import open_or_build

    result = load_knowledge(settings.knowledge_dir)
    if result.knowledge is None:
        for error in result.errors:
            print(f"error: {error}", file=sys.stderr)
        return 1
    stored, report = open_or_build(result.knowledge, load_encoder(settings), settings.index_dir, force=args.force)
    print(f"index {stored.folder.name}: {len(stored.ids)} passages, {stored.vectors.kind} index")
    print(f"added {len(report.added)}, changed {len(report.changed)}, removed {len(report.removed)}, "
          f"reused {report.reused}")
    return 0


def _eval(args: argparse.Namespace, settings: Settings) -> int:
    from bot.core.evaluation import evaluate
    from bot.core.questions import QuestionFileError, load_questions

    engine = _open_engine(settings)
    if engine is None:
        return 1
    try:
        questions = load_questions(args.path or QUESTIONS / args.split)
    except QuestionFileError as exc:
        print(f"spacebot: {exc}", file=sys.stderr)
        return 2
    report = evaluate(questions, lambda texts, contexts: engine.answer_many(texts, None, contexts), engine.knowledge)
    print(f"{len(questions)} questions from {args.path or QUESTIONS / args.split}")
    for line in report.summary_lines():
        print(line)
    for miss in report.misses:
        print(miss.describe())
    return 0


def _fit(args: argparse.Namespace, settings: Settings) -> int:
    from bot.core.calibration import describe, fit_judge, save_judge
    from bot.core.questions import QuestionFileError, load_questions

    if args.path.resolve().name == "holdout":
        print("spacebot: refusing to fit on the holdout set; fit on questions/tuning", file=sys.stderr)
        return 2
    engine = _open_engine(settings)
    if engine is None:
        return 1
    try:
        questions = load_questions(args.path)
    except QuestionFileError as exc:
        print(f"spacebot: {exc}", file=sys.stderr)
        return 2
    model = fit_judge(engine, questions, str(args.path))
    save_judge(model)
    for line in describe(model):
        print(line)
    return 0


# -- chat -----------------------------------------------------------------------------------


NEW_CONVERSATION = "/new"


def _chat(args: argparse.Namespace, settings: Settings) -> int:
    """A terminal conversation: each question may follow up on the last few; /new starts over."""
    from bot.discord_bot.conversations import extend, worth_remembering

    engine = _open_engine(settings)
    if engine is None:
        return 1
    print(f"Ask a space-policy question; follow-ups like \"and who will deorbit it?\" use the earlier ones. "
          f"{NEW_CONVERSATION} starts over; an empty line or Ctrl-D quits.")
    context: tuple[str, ...] = ()
    for question in _prompt_lines():
        if not question.strip():
            break
        if question.strip().lower() == NEW_CONVERSATION:
            context = ()
            print("New conversation: earlier questions are forgotten.", end="\n\n")
            continue
        answer = engine.answer(question, context=context)
        print(_chat_reply(answer), end="\n\n")
        if worth_remembering(answer):
            context = extend(context, answer.question)
    return 0


def _chat_reply(answer: Answer) -> str:
    """The answer as ``ask`` prints it; a declined follow-up also says what it followed up on."""
    text = format_answer(answer)
    if answer.context_used and not answer.answered:
        text += f"\nFollowing up on: {answer.context_used}"
    return text


def _prompt_lines() -> Iterable[str]:
    while True:
        try:
            yield input("> ")
        except EOFError:
            return


# -- Discord and benchmark shells -----------------------------------------------------------


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from bot.discord_bot.runner import run_bot

    return run_bot(settings)


def _sync(args: argparse.Namespace, settings: Settings) -> int:
    from bot.discord_bot.runner import sync_commands

    return sync_commands(settings, args.guild)


def _bench(args: argparse.Namespace, settings: Settings) -> int:
    from bot.bench.main import run_benchmarks

    output = args.output
    if output is None:
        output = settings.index_dir / "bench-quick.md" if args.quick else Path("BENCHMARKS.md")
    output.parent.mkdir(parents=True, exist_ok=True)
    return run_benchmarks(settings, quick=args.quick, scale=args.scale, output=output)


if __name__ == "__main__":
    raise SystemExit(main())
