"""Numbers for people (issue #24 items 5 and 8): percentages, rates that never round to nothing, plurals."""

import pytest

from pcls.utils.text import count, percent, rate


@pytest.mark.parametrize("value, text", [(0.42, "0.42"), (0.0042, "0.0042"), (5.678, "5.68"), (268.4, "268")])
def test_a_rate_keeps_three_significant_digits(value, text):
    assert rate(value) == text


def test_counts_and_percentages_read_as_words():
    assert [count(1, "epoch"), count(2, "epoch"), count(3, "batch", "batches")] == ["1 epoch", "2 epochs", "3 batches"]
    assert percent(0.972) == "97.20%" and percent(None) is None
