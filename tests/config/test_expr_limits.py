"""Quoted arithmetic is evaluated in floats (issue #25 item 10): "(((9**64)**64)**64)**64" took 33 s of CPU as an
exact integer power. Every route that evaluates such strings answers at once, with one line; each check runs in
a subprocess with a timeout, so a regression fails instead of hanging the suite."""

import re
import subprocess
import sys
import textwrap

import pytest

from pcls.config.expr import evaluate_strings, parse_number
from pcls.errors import PclsError

TOWER = "(((9**64)**64)**64)**64"


def run_bounded(code: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout)


def cli(*argv) -> subprocess.CompletedProcess:
    return run_bounded(f"import sys\nfrom pcls.cli import main\nsys.argv = ['pcls'] + {list(argv)!r}\nmain()")


def one_error_line(run) -> str:
    errors = [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("error:")]
    assert run.returncode == 2 and len(errors) == 1 and "Traceback" not in run.stderr, run.stderr[-2000:]
    return errors[0]


@pytest.mark.parametrize("text, reason", [
    ("9**999", "is not a finite real number"), ("1e400", "is not a finite real number"),
    ("(-1)**0.5", "is not a finite real number"), ("10**308*10", "is not a finite real number"),
    ("1/0", "divides by zero"), ("1/(2-2)", "divides by zero"),
])
def test_a_non_finite_expression_is_one_error(text, reason):
    with pytest.raises(PclsError, match=re.escape(f"the expression '{text}' {reason}")):
        parse_number(text)


def test_arithmetic_still_evaluates_as_before():
    assert parse_number("1.0/255.0") == 1.0 / 255.0 and parse_number("2**10") == 1024.0
    assert evaluate_strings({"size": "224", "sh": "1.0/3.0", "p": "2**-1", "name": "abc"}) == {
        "size": 224, "sh": 1.0 / 3.0, "p": 0.5, "name": "abc"}


def test_the_tower_from_an_override_or_a_config_file(tmp_path):
    error = one_error_line(cli("train", "--recipe", "demo", "-o", f"Optimizer.lr.learning_rate={TOWER}",
                               "--print-config"))
    assert f"the expression '{TOWER}' is not a finite real number" in error
    (tmp_path / "c.yaml").write_text(f"_base_: demo\nOptimizer:\n  lr:\n    learning_rate: '{TOWER}'\n")
    assert TOWER in one_error_line(cli("train", "--config", str(tmp_path / "c.yaml"), "--print-config"))


def test_the_tower_in_recipes_show():
    error = one_error_line(cli("recipes", "show", "demo", "-o", f"Optimizer.lr.learning_rate={TOWER}"))
    assert f"'{TOWER}' is not a finite real number" in error


def test_the_tower_in_operator_params_arch_kwargs_and_an_exports_inference_yml(tmp_path):
    (tmp_path / "inference.yml").write_text(textwrap.dedent(f"""\
        Global: {{input_size: 8}}
        PreProcess:
          transform_ops:
          - DecodeImage: {{}}
          - RandomErasing: {{EPSILON: '{TOWER}'}}
        PostProcess: {{name: Topk, topk: 1}}
    """))
    run = run_bounded(f"""
        from pcls.errors import PclsError
        from pcls.data.transforms import build_transforms
        from pcls.deploy.spec import read_spec
        from pcls.engine.backbone import build_backbone
        routes = [
            lambda: build_transforms([{{"RandomErasing": {{"sh": {TOWER!r}}}}}]),
            lambda: build_backbone({{"name": "ResNet18", "class_num": 2, "layer_scale": {TOWER!r}}}),
            lambda: build_transforms(read_spec({str(tmp_path)!r})["PreProcess"]["transform_ops"]),  # what predict does
        ]
        for route in routes:
            try:
                route()
                print("accepted")
            except PclsError as err:
                print(err)
    """)
    assert run.returncode == 0, run.stderr[-2000:]
    lines = run.stdout.strip().splitlines()
    assert len(lines) == 3 and all(f"'{TOWER}' is not a finite real number" in line for line in lines), run.stdout
    assert lines[0].startswith("transform_ops[0] RandomErasing.sh: ")
    assert lines[2].startswith("transform_ops[1] RandomErasing.EPSILON: ")
