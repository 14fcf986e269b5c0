"""The personal-data corpus through both screening layers (issue 13).

tests/data/pii_corpus.json holds disguised personal data (must be refused) and
legitimate branch texts in Chinese and English (must pass), each labelled. The
consensus layer is what every validator applies to a block (§5.3 and the ledger's
check of declared numbers, §8); admission (node/admission.py) is what a node adds
before it signs or relays. Targets: admission refuses all personal data, consensus
at least 95%, and neither refuses a legitimate text. ``python -m tools.bench_pii``
prints the same figures with their cost.
"""

import json

import pytest

from tools import gen_pii_corpus
from tools.pii_corpus import CORPUS, CorpusRunner, load

REFUSAL_REASONS = ("pii_", "invisible_char", "control_char")


@pytest.fixture(scope="module")
def verdicts():
    return CorpusRunner(load()).run()


def test_corpus_is_generated_and_large_enough():
    corpus = load()
    assert json.loads(gen_pii_corpus.dumps(gen_pii_corpus.generate())) == corpus, "regenerate: python -m tools.gen_pii_corpus > " + str(CORPUS)
    personal = [e for e in corpus["entries"] if e["pii"]]
    legit = [e for e in corpus["entries"] if not e["pii"]]
    assert len(personal) >= 300 and len(legit) >= 300
    assert {e["lang"] for e in legit} == {"en", "zh"} and sum(e["lang"] == "zh" for e in legit) >= 100
    assert len({e["id"] for e in corpus["entries"]}) == len(corpus["entries"])


def test_admission_refuses_all_personal_data(verdicts):
    missed = [v.entry["id"] for v in verdicts if v.entry["pii"] and v.admission is None]
    assert missed == []


def test_consensus_refuses_at_least_95_percent(verdicts):
    personal = [v for v in verdicts if v.entry["pii"]]
    refused = [v for v in personal if v.consensus is not None]
    assert len(refused) / len(personal) >= 0.95, [v.entry["id"] for v in personal if v.consensus is None]


def test_no_legitimate_text_refused(verdicts):
    wrong = [(v.entry["id"], v.message) for v in verdicts if not v.entry["pii"] and v.admission is not None]
    assert wrong == []


def test_refusals_are_for_personal_data_and_mask_it(verdicts):
    """Refused for the right reason (not a malformed entry), and the logged message
    names the field and never holds the whole value."""
    for v in verdicts:
        if not v.entry["pii"]:
            continue
        assert v.admission.startswith(REFUSAL_REASONS), (v.entry["id"], v.admission, v.message)
        field, _, message = v.message.partition(": ")
        assert field.startswith("record.body"), v.message
        for value in v.entry["fields"].values():
            for text in (value if isinstance(value, list) else [value]):
                if len(text) > 12:
                    assert text not in message, (v.entry["id"], v.message)


def test_consensus_refusals_are_a_subset_of_admission(verdicts):
    assert all(v.admission is not None for v in verdicts if v.consensus is not None)
