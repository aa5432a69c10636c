"""Cards tell the truth about the code: every built-in metric has a card whose facts match its
class, every dataset loader has a card, and the README's commands are the ones CI runs."""

from __future__ import annotations

import re

import pytest
from conftest import REPO

from iqabench import registry
from iqabench.cards import load_cards
from iqabench.data.loaders import LOADERS

BUILT_IN = [name for name, entry in registry.entries().items() if entry.distribution == "iqabench"]


@pytest.mark.parametrize("name", BUILT_IN)
def test_metric_card_matches_its_class(name: str) -> None:
    card = load_cards("metrics")[name]
    cls = registry.get(name)
    entry = registry.entries()[name]
    assert card["family"] == cls.family
    assert card["kind"] == ("full-reference" if cls.full_reference else "no-reference")
    assert card["trainable"] == cls.trainable
    assert card["higher_is_better"] == cls.higher_is_better
    assert card["implementation"]["entry_point"] == entry.target
    assert card["implementation"]["source"], "say whether it wraps a library or is hand-written"
    assert dict(card.get("parameters") or {}) == dict(cls.default_params)
    assert card["paper"]["title"]
    assert card["input"], "say how grey, RGB and 16-bit input are handled"
    calibration = card["calibration"]
    assert calibration["status"] in ("calibrated", "properties")
    if calibration["status"] == "calibrated":
        measured = calibration.get("max_relative_error", calibration.get("max_absolute_error"))
        assert measured is not None, "a calibrated card records the measured maximum error"


def test_every_dataset_has_a_card() -> None:
    cards = load_cards("datasets")
    for name in LOADERS:
        assert name in cards, name
        assert cards[name]["score"]["higher_is_better"] in (True, False)


def test_readme_test_command_is_what_ci_runs() -> None:
    readme = (REPO / "README.md").read_text()
    commands = re.findall(r"```bash\n(.+?)\n```", readme, flags=re.DOTALL)
    test_command = next(c for c in commands if "pytest" in c)
    assert "\n" not in test_command.strip()
    ci = (REPO / ".ci" / "run").read_text()
    assert test_command.strip() in ci.splitlines()


def test_readme_mentions_every_command() -> None:
    from iqabench.cli import COMMANDS

    readme = (REPO / "README.md").read_text()
    for name in COMMANDS:
        assert f"iqabench {name}" in readme, name
