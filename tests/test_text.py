"""Sentence splitting (abbreviations kept whole) and time references in questions."""

from __future__ import annotations

import pytest

from bot.core.text import (
    TimeReference,
    asks_about_the_past,
    count_sentences,
    find_time_reference,
    normalize,
    split_sentences,
    tokenize,
)


def test_split_sentences_on_terminal_punctuation() -> None:
    assert split_sentences("NASA agreed. Russia declined! Will ESA join? Yes.") == [
        "NASA agreed.", "Russia declined!", "Will ESA join?", "Yes."]


@pytest.mark.parametrize(
    "text",
    [
        "The U.S. Space Force was created in 2019.",
        "Dr. Smith met Gen. Raymond at the station.",
        "Agencies, e.g. NASA and ESA, agreed.",
        "It was signed in Jan. 2022 by the partners.",
        "John F. Kennedy set the Moon goal.",
        "The treaty in Art. 4 bans weapons of mass destruction in orbit.",
        "Talks with the U.N. Committee continued.",
    ],
)
def test_abbreviations_do_not_end_a_sentence(text: str) -> None:
    assert split_sentences(text) == [text]


def test_abbreviation_after_an_opening_parenthesis_does_not_end_a_sentence() -> None:
    """BUG: split_sentences strips only trailing punctuation from the last word, so "(Art." is not an abbreviation."""
    text = "The treaty (Art. 4) bans weapons of mass destruction in orbit."
    assert split_sentences(text) == [text]


def test_sentence_after_an_abbreviation_still_splits_at_the_real_end() -> None:
    text = "The U.S. signed in 2020. Russia did not sign."
    assert split_sentences(text) == ["The U.S. signed in 2020.", "Russia did not sign."]


def test_sentence_ending_with_a_quote_splits_after_the_quote() -> None:
    text = 'Borisov said "the decision has been made." The partners were told.'
    assert split_sentences(text) == ['Borisov said "the decision has been made."', "The partners were told."]


def test_sentence_starting_with_a_digit_splits() -> None:
    assert count_sentences("The station launched in 1998. 2000 saw the first crew.") == 2


def test_empty_and_whitespace_text_has_no_sentences() -> None:
    assert split_sentences("") == []
    assert split_sentences("   ") == []


def test_text_without_final_punctuation_is_one_sentence() -> None:
    assert split_sentences("No full stop at the end") == ["No full stop at the end"]


def test_normalize_folds_accents_and_case() -> None:
    assert normalize("Roscosmos ÉTÉ Ünity") == "roscosmos ete unity"


def test_tokenize_keeps_hyphenated_words_and_drops_punctuation() -> None:
    assert tokenize("Chang'e-8, ISS: mid-2024!") == ["chang'e-8", "iss", "mid-2024"]


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("What did Borisov announce in July 2022 about the ISS?", TimeReference(2022, 7)),
        ("Did Russia say in 2021 it would quit the ISS in 2025?", TimeReference(2021)),
        ("what was the plan back in 2019", TimeReference(2019)),
        ("Who was acting NASA administrator in early 2025?", TimeReference(2025)),
        ("the position as of March 2026", TimeReference(2026, 3)),
        ("What happened in Sept. 2022?", TimeReference(2022, 9)),
        ("what changed in mid-2024", TimeReference(2024)),
        ("Artemis news from December 2024", TimeReference(2024, 12)),
        ("What did NASA say in may 2023", TimeReference(2023, 5)),
        ("the October 2023 statement", TimeReference(2023, 10)),
    ],
)
def test_time_reference_is_found(question: str, expected: TimeReference) -> None:
    assert find_time_reference(question) == expected


@pytest.mark.parametrize(
    "question",
    [
        "When is Russia leaving the ISS?",
        "Will Russia leave the ISS after 2024?",
        "Is the 2028 date still the plan?",
        "How many Artemis Accords signatories are there?",
        "",
    ],
)
def test_no_time_reference_without_an_asked_time(question: str) -> None:
    assert find_time_reference(question) is None


def test_time_reference_with_a_unicode_lookalike_letter_does_not_crash() -> None:
    """BUG: re.IGNORECASE lets 'ſ' (long s) match 's' in a month name; MONTHS[...] then raises KeyError."""
    assert find_time_reference("what happened in ſeptember 2022") == TimeReference(2022, 9)


@pytest.mark.parametrize(
    "question",
    ["When did India sign the Artemis Accords?", "who was the first chief of space operations",
     "What did Rogozin say in 2020?"],
)
def test_question_about_a_past_event_is_recognised(question: str) -> None:
    assert asks_about_the_past(question)


@pytest.mark.parametrize(
    "question",
    ["When is Russia leaving the ISS?", "Which country was the most recent to join the Artemis Accords?",
     "did they ever leave? are they still there", "Who leads the US Space Force?",
     "did nasa cancel the gateway station", "So was the Artemis III landing dropped?"],
)
def test_question_about_the_present_is_not_taken_for_the_past(question: str) -> None:
    assert not asks_about_the_past(question)
