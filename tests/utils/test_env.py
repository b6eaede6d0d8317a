"""pcls.utils.env.env_number: the one reader of numeric settings ($PCLS_LOADER_TIMEOUT, $PCLS_MAX_FILE_BYTES, ...)."""

import pytest

from pcls.data.decode import max_file_bytes
from pcls.data.loader import DEFAULT_LOADER_TIMEOUT, loader_timeout
from pcls.errors import PclsError
from pcls.utils.env import env_number


def test_unset_or_blank_is_the_default_and_numbers_are_read(monkeypatch):
    monkeypatch.delenv("PCLS_LOADER_TIMEOUT", raising=False)
    assert loader_timeout() == DEFAULT_LOADER_TIMEOUT
    monkeypatch.setenv("PCLS_LOADER_TIMEOUT", "  ")
    assert loader_timeout() == DEFAULT_LOADER_TIMEOUT
    monkeypatch.setenv("PCLS_LOADER_TIMEOUT", "2.5")
    assert loader_timeout() == 2.5
    monkeypatch.setenv("PCLS_MAX_FILE_BYTES", "1_000")
    value = max_file_bytes()
    assert value == 1000 and isinstance(value, int)
    monkeypatch.setenv("X_RATE", "0")
    assert env_number("X_RATE", 5.0, "a rate", zero_ok=True) == 0


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "soon"])
def test_anything_but_a_finite_positive_number_is_one_line(monkeypatch, value):
    monkeypatch.setenv("PCLS_LOADER_TIMEOUT", value)
    with pytest.raises(PclsError, match=f"^PCLS_LOADER_TIMEOUT must be a positive number of seconds, got '{value}'$"):
        loader_timeout()


def test_an_integer_setting_refuses_a_fraction(monkeypatch):
    monkeypatch.setenv("PCLS_MAX_FILE_BYTES", "1.5")
    with pytest.raises(PclsError, match="PCLS_MAX_FILE_BYTES must be a positive number of bytes, got '1.5'"):
        max_file_bytes()
