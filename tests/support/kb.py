"""Small knowledge folders for tests: a valid mini knowledge base and ways to break it.

``mini_documents()`` returns fresh, mutable topic documents (file name -> YAML mapping); tests
change them and write them with ``write_documents``. The mini knowledge base has one supersedes
storyline (Russia and the ISS: 2021 -> 2022 -> 2023) and a few unrelated passages.
"""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path
from typing import Any

import yaml

STORYLINE = ("mini-iss-2021-04-from-2025", "mini-iss-2022-07-after-2024", "mini-iss-2023-04-through-2028")
STORYLINE_LATEST = STORYLINE[-1]
STORYLINE_FILE = "russia-station.yaml"
DEBRIS = "debris-2022-09-fcc-five-year-rule"  # the mini knowledge base's space-debris passage


def _source(publisher: str, title: str, url: str) -> dict[str, str]:
    return {"publisher": publisher, "title": title, "url": url}


_DOCUMENTS: dict[str, dict[str, Any]] = {
    STORYLINE_FILE: {
        "topic": "russia-station",
        "title": "Russia and the International Space Station",
        "examples": ["When is Russia leaving the ISS?"],
        "passages": [
            {
                "id": STORYLINE[0],
                "title": "Roscosmos says Russia may leave the ISS from 2025 (April 2021)",
                "text": "In April 2021 Roscosmos officials said Russia could begin leaving the ISS from 2025. "
                        "Deputy prime minister Borisov said the station was ageing.",
                "date": dt.date(2021, 4, 18),
                "source": _source("TASS", "Russia to decide on withdrawal from ISS", "https://tass.com/science/1"),
                "tags": ["iss", "russia"],
                "aliases": ["ISS", "Roscosmos"],
            },
            {
                "id": STORYLINE[1],
                "title": "Borisov says Russia will leave the ISS after 2024 (July 2022)",
                "text": "In July 2022 the new Roscosmos head Yuri Borisov told President Putin that Russia would "
                        "leave the ISS after 2024. Russia would build its own orbital station instead.",
                "date": dt.date(2022, 7, 27),
                "source": _source("Reuters", "Russia to quit ISS after 2024", "https://www.reuters.com/article/2"),
                "tags": ["iss", "russia"],
                "aliases": ["ISS", "Roscosmos", "Borisov"],
                "supersedes": [STORYLINE[0]],
            },
            {
                "id": STORYLINE[2],
                "title": "Russia extends its ISS participation through 2028 (April 2023)",
                "text": "In April 2023 Roscosmos told its partners that Russia would stay on the ISS through 2028. "
                        "NASA confirmed the extension.",
                "date": dt.date(2023, 4, 27),
                "source": _source("NASA", "Russia commits to the ISS until 2028", "https://www.nasa.gov/news/3"),
                "tags": ["iss", "russia"],
                "aliases": ["ISS", "Roscosmos", "2028"],
                "supersedes": [STORYLINE[1]],
            },
        ],
    },
    "space-debris.yaml": {
        "topic": "space-debris",
        "title": "Space debris rules",
        "passages": [
            {
                "id": DEBRIS,
                "title": "FCC adopts a five-year rule for deorbiting dead satellites (September 2022)",
                "text": "The Federal Communications Commission voted to require operators of satellites in low "
                        "orbit to deorbit them within five years after their missions end.",
                "date": dt.date(2022, 9, 29),
                "source": _source("FCC", "FCC adopts new five-year rule", "https://www.fcc.gov/document/4"),
                "tags": ["debris", "fcc"],
                "aliases": ["FCC", "five-year rule"],
            },
            {
                "id": "debris-2021-11-russian-asat-test",
                "title": "Russian anti-satellite missile test creates a debris cloud (November 2021)",
                "text": "Russia destroyed its defunct Kosmos 1408 satellite with a ground-launched missile, "
                        "creating more than 1,500 pieces of trackable debris. The station crew sheltered in "
                        "their spacecraft.",
                "date": dt.date(2021, 11, 15),
                "source": _source("Space Force", "Russian ASAT test", "https://www.spaceforce.mil/news/5"),
                "tags": ["debris", "asat"],
                "aliases": ["ASAT", "Kosmos 1408"],
            },
        ],
    },
    "moon.yaml": {
        "topic": "moon",
        "title": "Lunar exploration",
        "passages": [
            {
                "id": "moon-2020-10-artemis-accords-signed",
                "title": "Eight nations sign the Artemis Accords (October 2020)",
                "text": "Eight countries signed the Artemis Accords, principles for peaceful lunar exploration "
                        "written by NASA and the State Department.",
                "date": dt.date(2020, 10, 13),
                "source": _source("NASA", "NASA, international partners advance cooperation",
                                  "https://www.nasa.gov/news/6"),
                "tags": ["moon", "artemis"],
                "aliases": ["Artemis Accords"],
            },
            {
                "id": "moon-2021-03-ilrs-china-russia",
                "title": "China and Russia agree to build a lunar research station (March 2021)",
                "text": "China and Russia signed a memorandum to build an International Lunar Research Station "
                        "together on the Moon's surface.",
                "date": dt.date(2021, 3, 9),
                "source": _source("CNSA", "China and Russia sign lunar station memorandum",
                                  "https://www.cnsa.gov.cn/english/7"),
                "tags": ["moon", "ilrs"],
                "aliases": ["ILRS"],
            },
        ],
    },
}


def mini_documents() -> dict[str, dict[str, Any]]:
    """A fresh deep copy of the valid mini knowledge base, file name -> document."""
    return copy.deepcopy(_DOCUMENTS)


def mini_passage_ids() -> list[str]:
    return [p["id"] for doc in _DOCUMENTS.values() for p in doc["passages"]]


class _NoAliasDumper(yaml.SafeDumper):
    """Writes a value shared by two passages out twice: knowledge files refuse anchors and aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def write_documents(directory: Path, documents: dict[str, dict[str, Any]]) -> Path:
    """Write each document as ``directory/<file name>``; returns the directory."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, document in documents.items():
        text = yaml.dump(document, Dumper=_NoAliasDumper, sort_keys=False, allow_unicode=True)
        (directory / name).write_text(text, encoding="utf-8")
    return directory


def write_mini_kb(directory: Path) -> Path:
    return write_documents(directory, mini_documents())


def passage(documents: dict[str, dict[str, Any]], passage_id: str) -> dict[str, Any]:
    """The mutable passage mapping with this id, wherever it is."""
    for document in documents.values():
        for entry in document["passages"]:
            if entry.get("id") == passage_id:
                return entry
    raise KeyError(passage_id)


# -- broken variants ------------------------------------------------------------------------------


def write_raw(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def write_malformed_yaml(directory: Path, name: str = "broken.yaml") -> Path:
    """A file whose YAML does not parse (an unclosed flow sequence)."""
    return write_raw(directory, name, "topic: broken\ntitle: Broken\npassages: [\n  - id: x\n")


def with_passage_change(passage_id: str, **changes: Any) -> dict[str, dict[str, Any]]:
    """The mini documents with fields of one passage replaced (a value of ``...`` deletes the field)."""
    documents = mini_documents()
    entry = passage(documents, passage_id)
    for field_name, value in changes.items():
        if value is ...:
            entry.pop(field_name, None)
        else:
            entry[field_name] = value
    return documents


def add_passage(documents: dict[str, dict[str, Any]], file_name: str, entry: dict[str, Any]) -> None:
    documents[file_name]["passages"].append(entry)


def new_passage(passage_id: str, *, title: str, text: str, date: dt.date, **extra: Any) -> dict[str, Any]:
    return {
        "id": passage_id, "title": title, "text": text, "date": date,
        "source": _source("Example News", title, f"https://example.org/{passage_id}"), **extra,
    }
