"""Paddle < 3.0 installed by mistake: the first `import paddle` in a pcls process, whoever makes it, is refused
with one line before the old Paddle's own code runs (stand-in packages: tests/doctor/standin.py)."""

import pytest

from pcls.doctor.paddle_guard import read_version_file, too_old_message
from tests.doctor.standin import make_paddle, run_python

RAN = "raise RuntimeError('the stand-in Paddle 2.6 init ran')"


def test_version_file_is_read_as_literals(tmp_path):
    make_paddle(tmp_path, "2.6.2", cuda="11.8", cudnn="8.6")
    fields = read_version_file(tmp_path / "paddle")
    assert fields["full_version"] == "2.6.2" and fields["cuda_version"] == "11.8"
    assert fields["compiled_cuda_archs"] == [] and fields["tensorrt_version"] == "None"
    assert read_version_file(tmp_path / "nowhere") == {}


@pytest.mark.parametrize("version, refused", [("2.6.2", True), ("1.8.5", True), ("3.0.0", False),
                                              ("3.3.1", False), ("3.0.0rc1", False), ("0.0.0", False)])
def test_which_versions_are_refused(version, refused):
    message = too_old_message(version)
    assert (message is not None) == refused
    if refused:
        assert version in message and "PaddlePaddle's own index" in message


def test_old_paddle_is_refused_before_its_code_runs(tmp_path):
    make_paddle(tmp_path, "2.6.2", init=RAN)
    done = run_python(tmp_path, "-c", "import pcls\ntry:\n    import paddle\nexcept ImportError as err:\n"
                      "    print(type(err).__name__, err)\nimport paddle")
    assert done.returncode == 1
    assert done.stdout.startswith("PaddleTooOld pcls needs PaddlePaddle >= 3.0 but 2.6.2 is installed")
    assert "init ran" not in done.stderr  # refused twice, executed never


def test_cli_prints_one_line_and_exits_2(tmp_path):
    make_paddle(tmp_path, "2.6.2", init=RAN)
    done = run_python(tmp_path, "-m", "pcls", "export", "ResNet18", "--out", str(tmp_path / "out"))
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: pcls needs PaddlePaddle >= 3.0 but 2.6.2"), lines
    assert "README 'GPU'" in lines[0]


def test_paddle_imported_before_pcls_is_checked_at_once(tmp_path):
    make_paddle(tmp_path, "2.6.2")
    done = run_python(tmp_path, "-c", "import paddle, pcls")
    assert done.returncode == 1 and "PaddleTooOld: pcls needs PaddlePaddle >= 3.0" in done.stderr


@pytest.mark.parametrize("version", ["3.0.0", "0.0.0"])
def test_paddle_3_and_dev_builds_import_with_their_own_loader(tmp_path, version):
    make_paddle(tmp_path, version, init="LOADED = True")
    done = run_python(tmp_path, "-c", "import sys, pcls, paddle\n"
                      "from pcls.doctor.paddle_guard import _CheckedLoader, _PaddleImportGuard\n"
                      "assert paddle.LOADED and paddle.__spec__.loader is paddle.__loader__\n"
                      "assert not isinstance(paddle.__loader__, _CheckedLoader)\n"
                      "assert not any(isinstance(f, _PaddleImportGuard) for f in sys.meta_path)\n"
                      "print(paddle.__version__)")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == version


def test_no_paddle_at_all_is_one_line(tmp_path):
    # the real Paddle is installed here: a finder (loaded by sitecustomize) makes it unfindable, as Python would
    (tmp_path / "sitecustomize.py").write_text(
        "import sys\nclass NoPaddle:\n    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'paddle':\n"
        "            raise ModuleNotFoundError(\"No module named 'paddle'\", name='paddle')\n"
        "sys.meta_path.insert(0, NoPaddle())\n")
    done = run_python(tmp_path, "-m", "pcls", "export", "ResNet18", "--out", str(tmp_path / "out"))
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: PaddlePaddle is not installed"), lines
