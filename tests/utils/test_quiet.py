"""pcls.utils.quiet: output written straight to file descriptors 1/2 inside the block never reaches them."""

import os

import pytest

from pcls.utils.quiet import quiet


def test_fd_output_is_swallowed_and_replayed_on_failure(capfd, monkeypatch):
    monkeypatch.delenv("PCLS_DEBUG", raising=False)
    with quiet():
        os.write(1, b"C++ progress line\n")
        print("python print")
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    with pytest.raises(RuntimeError):
        with quiet():
            os.write(1, b"why it failed\n")
            raise RuntimeError("boom")
    out, err = capfd.readouterr()
    assert out == "" and "why it failed" in err


def test_debug_shows_it_on_stderr_keeping_stdout_clean(capfd, monkeypatch):
    monkeypatch.setenv("PCLS_DEBUG", "1")
    with quiet():
        os.write(1, b"visible with --debug\n")
    out, err = capfd.readouterr()
    assert out == "" and "visible with --debug" in err
