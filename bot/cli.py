"""``spacebot``: the command-line shell over the answer engine.

Every command imports what it needs inside its own function, so ``spacebot --help`` and
``spacebot validate`` start without loading torch, FAISS or the model.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from bot.core.errors import EncoderUnavailableError

if TYPE_CHECKING:
    from bot.core.config import Settings
    from bot.core.engine import Engine
    from bot.core.models import Answer, Passage

log = logging.getLogger(__name__)

DEFAULT_QUESTIONS = Path("tests/data/questions")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        settings = _settings(args)
    except ValueError as exc:  # pydantic's ValidationError: a bad SPACEBOT_* value
        print(f"spacebot: invalid setting: {_first_line_per_error(exc)}", file=sys.stderr)
        return 2
    level = settings.log_level if args.command == "run" or args.verbose else "WARNING"
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.handler(args, settings))
    except KeyboardInterrupt:
        return 130
    except EncoderUnavailableError as exc:
        print(f"spacebot: {exc}", file=sys.stderr)
        return 2


def _first_line_per_error(exc: ValueError) -> str:
    """pydantic's report as one line: 'top_k: Input should be a valid integer; ...'."""
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return str(exc).splitlines()[0]
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in errors())


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spacebot", description="Dated, cited answers to space-policy questions.")
    parser.add_argument("--knowledge", type=Path, help="knowledge folder (default: SPACEBOT_KNOWLEDGE_DIR)")
    parser.add_argument("--index", type=Path, help="index folder (default: SPACEBOT_INDEX_DIR or index/)")
    parser.add_argument("--encoder", choices=["onnx", "torch"], help="query encoder (default: SPACEBOT_ENCODER)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at SPACEBOT_LOG_LEVEL, not only warnings")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    ask = commands.add_parser("ask", help="answer a question ('-' reads one question per line from stdin)")
    ask.add_argument("question", nargs="+", help="the question, or '-' for stdin")
    ask.add_argument("-k", type=int, default=None, help="how many passages to return")
    ask.add_argument("--json", action="store_true", help="print one JSON object per question")
    ask.set_defaults(handler=_ask)

    validate = commands.add_parser("validate", help="check the knowledge files and list every problem")
    validate.add_argument("directory", nargs="?", type=Path, help="knowledge folder to check")
    validate.set_defaults(handler=_validate)

    build = commands.add_parser("build", help="build or update the index (incremental)")
    build.add_argument("--force", action="store_true", help="re-embed every passage")
    build.set_defaults(handler=_build)

    evaluate = commands.add_parser("eval", help="score retrieval on a question set")
    evaluate.add_argument("file", nargs="?", type=Path, default=DEFAULT_QUESTIONS, help="YAML file or folder")
    evaluate.set_defaults(handler=_eval)

    chat = commands.add_parser("chat", help="ask questions in a terminal loop")
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
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    from bot.core.config import Settings

    overrides = {
        key: value
        for key, value in (("knowledge_dir", args.knowledge), ("index_dir", args.index), ("encoder", args.encoder))
        if value is not None
    }
    return Settings(**overrides)


def _open_engine(settings: Settings) -> Engine | None:
    from bot.core.engine import Engine, KnowledgeError

    try:
        return Engine.open(settings)
    except KnowledgeError as exc:
        print(f"The knowledge base in {settings.knowledge_dir} does not validate:", file=sys.stderr)
        for issue in exc.issues:
            print(f"  error: {issue}", file=sys.stderr)
        return None


# -- ask ------------------------------------------------------------------------------------


def _ask(args: argparse.Namespace, settings: Settings) -> int:
    engine = _open_engine(settings)
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


def _ask_stream(engine: Engine, source: TextIO, sink: TextIO, k: int | None) -> int:
    """One JSON answer per input line (a blank line is declined), the model loaded once."""
    for line in source:
        question = line.rstrip("\r\n")
        sink.write(json.dumps(engine.answer(question, k).to_dict(), ensure_ascii=False) + "\n")
        sink.flush()
    return 0


def format_answer(answer: Answer) -> str:
    """The answer as a person reads it in a terminal: lead, sources, earlier positions."""
    if not answer.answered:
        lines = ["I only answer space-policy questions, and found nothing close."]
        if answer.suggestions:
            lines.append("Did you mean:")
            lines += [f"  - {s}" for s in answer.suggestions]
        return "\n".join(lines)
    lead = answer.passages[0].passage
    lines = [f"{lead.title} ({lead.date.isoformat()})", "", f"{answer.lead} [1]", ""]
    cited = list({p.id: p for p in [*(r.passage for r in answer.passages), *answer.history]}.values())
    number = {passage.id: n for n, passage in enumerate(cited, start=1)}
    if answer.history:
        lines.append("Earlier positions:")
        lines += [f"  {p.date.isoformat()}  {p.title} [{number[p.id]}]" for p in answer.history]
        lines.append("")
    lines.append("Sources:")
    for passage in cited:
        lines += _citation(number[passage.id], passage)
    lines.append(f"\n(knowledge base {answer.kb_version}, {answer.latency_ms:.0f} ms)")
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
        print(f"{len(result.errors)} error(s) in {result.files} file(s); nothing was changed.")
        return 1
    assert result.knowledge is not None
    knowledge = result.knowledge
    print(f"ok: {len(knowledge.topics)} topics, {len(knowledge)} passages in {result.files} files, "
          f"{len(result.warnings)} warning(s); version {knowledge.version}")
    return 0


def _build(args: argparse.Namespace, settings: Settings) -> int:
    from bot.core.embedding import load_encoder
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
    from bot.core.evaluation import evaluate, load_questions

    engine = _open_engine(settings)
    if engine is None:
        return 1
    questions = load_questions(args.file)
    report = evaluate(questions, engine.answer_many)
    for line in report.summary_lines():
        print(line)
    for miss in report.misses:
        print(f"miss [{miss.question.source}] {miss.question.text!r}: {miss.reason}; "
              f"expected {list(miss.question.expect) or 'to decline'}, got {miss.got}")
    return 0


# -- chat -----------------------------------------------------------------------------------


def _chat(args: argparse.Namespace, settings: Settings) -> int:
    engine = _open_engine(settings)
    if engine is None:
        return 1
    print("Ask a space-policy question (empty line or Ctrl-D to quit).")
    for question in _prompt_lines():
        if not question.strip():
            break
        print(format_answer(engine.answer(question)), end="\n\n")
    return 0


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
