"""Hostile YAML in a config or an `-o` value (issue #25 items 8 and 12): alias bombs are refused while loading
(memory-capped here), deep nesting is one line, duplicate keys are a warning naming both lines, and no
message formats an unbounded value."""

import logging
import subprocess
import sys
import textwrap

import pytest

from pcls.config import load_config, parse_override
from pcls.config.safe_yaml import MAX_YAML_DEPTH, MAX_YAML_VALUES, load_yaml_text
from pcls.errors import PclsError, short_repr

CAP_BYTES = 1536 * 1024 * 1024
LEVELS = "abcdefghi"


def alias_bomb(flow: bool = False) -> str:
    """The billion-laughs document: 9 levels of 9 aliases each (9**9 = 387 M strings, ~400 bytes of text)."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip(LEVELS, LEVELS[1:]):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    if flow:
        return "{" + ", ".join(lines) + "}"
    return "\n".join(lines) + "\n"


def run_capped(argv) -> subprocess.CompletedProcess:
    code = textwrap.dedent(f"""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, ({CAP_BYTES}, {CAP_BYTES}))
        from pcls.cli import main
        sys.argv = ["pcls"] + {list(argv)!r}
        main()
    """)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def one_error_line(run) -> str:
    errors = [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("error:")]
    assert run.returncode == 2 and len(errors) == 1 and "Traceback" not in run.stderr, run.stderr[-2000:]
    return errors[0]


def test_alias_bomb_in_a_config_is_refused_while_loading(tmp_path):
    (tmp_path / "bomb.yaml").write_text(alias_bomb())
    assert (tmp_path / "bomb.yaml").stat().st_size < 500
    error = one_error_line(run_capped(["train", "--config", str(tmp_path / "bomb.yaml"), "--print-config"]))
    values, line = 10, 1  # the first list: itself + 9 strings; each level: itself + 9 copies of the one before
    while values <= MAX_YAML_VALUES:
        values, line = 1 + 9 * values, line + 1
    assert f"bomb.yaml:{line}: YAML aliases expand this value to more than {MAX_YAML_VALUES:,} values" in error


def test_alias_bomb_in_an_override_with_print_config(tmp_path):
    error = one_error_line(run_capped(["train", "--recipe", "demo", "-o", "Global.bomb=" + alias_bomb(flow=True),
                                       "--print-config"]))
    assert "bad override" in error and "YAML aliases expand this value" in error and len(error) < 400


def test_a_self_referencing_alias_is_one_line():
    with pytest.raises(PclsError, match="a YAML alias refers to the value that contains it"):
        load_yaml_text("a: &x [1, *x]\n", "c.yaml")


def test_shared_aliases_within_the_budget_still_load():
    data = load_yaml_text("base: &b {lr: 0.1, ops: [1, 2]}\nTrain: *b\nEval:\n  <<: *b\n  lr: 0.2\n", "c.yaml")
    assert data["Train"] == {"lr": 0.1, "ops": [1, 2]} and data["Eval"] == {"lr": 0.2, "ops": [1, 2]}


def test_a_config_nested_500_deep_is_one_line(tmp_path):
    text = "".join("  " * i + f"k{i}:\n" for i in range(500)) + "  " * 500 + "1\n"
    (tmp_path / "deep.yaml").write_text("Global:\n" + textwrap.indent(text, "  "))
    with pytest.raises(PclsError, match=rf"deep.yaml:\d+: YAML nested more than {MAX_YAML_DEPTH} levels deep"):
        load_config(tmp_path / "deep.yaml", validate_schema=False)


@pytest.mark.parametrize("depth", [500, 2000])
def test_an_override_nested_deep_is_one_line(depth):
    with pytest.raises(PclsError) as err:
        parse_override("Global.x=" + "[" * depth + "]" * depth)
    message = err.value.message
    assert message.startswith("bad override 'Global.x=[[[[") and len(message) < 400
    assert "nested more than" in message or "exceeded maximum nesting depth" in message


def test_duplicate_keys_warn_with_both_lines(tmp_path, caplog):
    (tmp_path / "dup.yaml").write_text("Global:\n  epochs: 1\n  seed: 3\n  epochs: 5\n")
    with caplog.at_level(logging.WARNING):
        data = load_config(tmp_path / "dup.yaml", validate_schema=False)
    assert data["Global"]["epochs"] == 5
    assert f"{tmp_path / 'dup.yaml'}:2: key 'epochs' is repeated on line 4; YAML keeps the later value" in caplog.text


def test_short_repr_never_walks_a_shared_structure():
    level = ["lol"] * 9
    for _ in range(30):  # 9**30 strings if walked as a tree
        level = [level] * 9
    text = short_repr({"key": level})
    assert len(text) <= 120 and text.startswith("{'key': [[[")
