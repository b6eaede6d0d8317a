"""Freed tensor memory is kept for reuse by a training process (pcls/engine/allocator.py): glibc told so through
mallopt, off with PCLS_REUSE_MEMORY=0, and the pages of a freed large block really are reused."""

import subprocess
import sys
import textwrap

import pytest

from pcls.engine import allocator
from pcls.errors import PclsError
from tests.engine.conftest import tiny_config, write_config


class RecordingLibc:
    """Stands in for glibc: records mallopt(param, value) and answers `result` (1 is glibc's success)."""

    def __init__(self, result=1):
        self.calls, self.result = [], result

    def mallopt(self, param, value):
        self.calls.append((param, value))
        return self.result


def test_glibc_is_told_to_keep_large_blocks_in_its_heap():
    libc = RecordingLibc()
    assert allocator.reuse_freed_memory({}, libc) is True
    # the trim threshold first: once large blocks come from the heap, freeing one must not shrink it again
    assert libc.calls == [(allocator.M_TRIM_THRESHOLD, 2**31 - 1), (allocator.M_MMAP_MAX, 0)]


def test_a_refused_setting_is_reported_as_not_done():
    assert allocator.reuse_freed_memory({}, RecordingLibc(result=0)) is False


@pytest.mark.parametrize("value", ["0", "off"])
def test_the_switch_leaves_the_c_library_alone(value):
    libc = RecordingLibc()
    assert allocator.reuse_freed_memory({"PCLS_REUSE_MEMORY": value}, libc) is False
    assert libc.calls == []


def test_a_bad_switch_value_is_one_clear_error():
    with pytest.raises(PclsError, match=r"PCLS_REUSE_MEMORY='yes'.*'0'"):
        allocator.reuse_freed_memory({"PCLS_REUSE_MEMORY": "yes"}, RecordingLibc())


def test_a_c_library_without_mallopt_is_left_alone():
    assert allocator.reuse_freed_memory({}, object()) is False


FAULTS = textwrap.dedent("""
    import ctypes, resource
    from pcls.engine.allocator import reuse_freed_memory
    reuse_freed_memory()
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    size = 64 << 20  # above any mmap threshold glibc picks itself; Paddle's CPU tensors come from plain malloc too

    def block():  # allocated, every page written, freed -- an activation's life
        p = libc.malloc(size)
        ctypes.memset(p, 1, size)
        libc.free(ctypes.c_void_p(p))

    block()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(3):
        block()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_a_freed_large_block_is_reused_without_faulting_its_pages_in_again(monkeypatch):
    def faults(switch):
        monkeypatch.setenv("PCLS_REUSE_MEMORY", switch)
        out = subprocess.run([sys.executable, "-c", FAULTS], capture_output=True, text=True, check=True)
        return int(out.stdout.split()[-1])

    pages = 3 * (64 << 20) // 4096
    assert faults("0") > pages // 2  # glibc's defaults: every block comes as fresh pages from the kernel
    assert faults("1") < pages // 20  # kept in the heap: the same pages again


def test_the_trainer_keeps_freed_memory_on_cpu(tmp_path, colour_data, tinynet, monkeypatch):
    from pcls.config import load_config
    from pcls.engine.trainer import Trainer

    calls = []
    monkeypatch.setattr(allocator, "reuse_freed_memory", lambda: calls.append(True))
    cfg = load_config(str(write_config(tiny_config(colour_data, tmp_path / "out", epochs=1), tmp_path / "c.yaml")))
    Trainer(cfg)
    assert calls == [True]
