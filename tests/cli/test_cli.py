"""The command tree: honest help, version, the error contract, fast start without paddle, completions."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from pcls import __version__
from pcls.cli import app

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = ["train", "eval", "distill", "export", "predict", "bench", "data", "zoo", "recipes"]
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, list(args))


def test_root_help_lists_every_command():
    result = invoke("--help")
    assert result.exit_code == 0
    for command in COMMANDS:
        assert command in result.output


def _all_command_paths():
    import typer.main

    def walk(command, path):
        yield path
        for name, child in getattr(command, "commands", {}).items():
            yield from walk(child, path + [name])

    return [p for p in walk(typer.main.get_command(app), []) if p]


@pytest.mark.parametrize("path", _all_command_paths(), ids=lambda p: " ".join(p))
def test_every_command_has_help_with_a_summary_and_an_example(path):
    result = invoke(*path, "--help")
    assert result.exit_code == 0, result.output
    assert "Example: pcls " in " ".join(result.output.split())


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.output.strip() == f"pcls {__version__}"


def test_python_dash_m_runs_the_same_app():
    result = subprocess.run([sys.executable, "-m", "pcls", "--version"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0 and result.stdout.strip() == f"pcls {__version__}"


def test_user_error_is_one_line_exit_2_without_traceback():
    result = subprocess.run([sys.executable, "-m", "pcls", "recipes", "show", "no-such-recipe"],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: unknown recipe 'no-such-recipe'")


def test_debug_flag_shows_the_traceback():
    result = subprocess.run([sys.executable, "-m", "pcls", "--debug", "recipes", "show", "no-such-recipe"],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2
    assert "Traceback" in result.stderr and "PclsError" in result.stderr


@pytest.mark.parametrize("args", [["--help"], ["recipes", "list"], ["zoo", "list"], ["recipes", "show", "demo"]])
def test_non_compute_commands_do_not_import_paddle(args):
    code = (
        "import sys\n"
        "from pcls.cli import main\n"
        f"try:\n    main({args!r})\nexcept SystemExit:\n    pass\n"
        "print('PADDLE' if 'paddle' in sys.modules else 'NO-PADDLE')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.stdout.strip().splitlines()[-1] == "NO-PADDLE", result.stderr[-2000:]


def test_completions_are_up_to_date():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import gen_completions
    finally:
        sys.path.pop(0)
    for shell, name in gen_completions.SHELLS.items():
        committed = (ROOT / "completions" / name).read_text()
        assert committed == gen_completions.render(shell), f"completions/{name} is stale: run scripts/gen_completions.py"


def test_bash_completion_answers_subcommands():
    env = {"COMP_WORDS": "pcls rec", "COMP_CWORD": "1", "_PCLS_COMPLETE": "complete_bash"}
    import os

    result = subprocess.run([sys.executable, "-m", "pcls"], capture_output=True, text=True, cwd=ROOT,
                            env={**os.environ, **env})
    assert result.stdout.split() == ["recipes"]


# --- fuzzing: -o strings and config values never produce a traceback, only exit 0 or a one-line exit 2 -------------
_keys = st.one_of(
    st.sampled_from(["Global.epochs", "Global.seed", "Arch.class_num", "Optimizer.lr.learning_rate",
                     "DataLoader.Train.sampler.batch_size", "Global.device", "Global.bogus", "Loss.Train",
                     "DataLoader.Train.dataset.transform_ops", "DataLoader.Train.dataset.transform_ops.0",
                     "Metric.Eval.0.TopkAcc.topk", "AMP.level", "Reference.top1", "Global", ""]),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20),
)
_values = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20),
    st.integers().map(str), st.floats(allow_nan=True).map(str),
    st.sampled_from(["[1, 2", "{a: 1}", "null", "true", "[]", "{}", "- x", "!!python/object:os.system", "&a 1",
                     "*a", "'", '"', "1.0/255.0", "[[1]]", "{DecodeImage: 3}"]),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(overrides=st.lists(st.one_of(st.builds(lambda k, v: f"{k}={v}", _keys, _values), _values), max_size=3))
def test_fuzzed_overrides_never_traceback(overrides):
    args = ["recipes", "show", "flowers102-finetune"]
    for override in overrides:
        args += ["-o", override]
    result = runner.invoke(app, args)
    assert result.exit_code in (0, 2), (overrides, result.output, result.exception)
    if result.exit_code == 2:
        assert result.exception is None or isinstance(result.exception, SystemExit)
        assert "Traceback" not in result.output


_yaml_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                          st.text(max_size=10), st.lists(st.integers(), max_size=3))


@settings(max_examples=150, deadline=None)
@given(section=st.sampled_from(["Global", "Arch", "Optimizer", "DataLoader", "Loss", "Metric", "AMP", "EMA", "Infer"]),
       key=st.sampled_from(["epochs", "name", "class_num", "lr", "Train", "Eval", "decay", "level", "zzz", "topk"]),
       value=st.one_of(_yaml_scalars, st.dictionaries(st.text(max_size=5), _yaml_scalars, max_size=2)))
def test_fuzzed_config_values_never_traceback(tmp_path_factory, section, key, value):
    import yaml

    from pcls.config import load_config
    from pcls.errors import PclsError

    path = tmp_path_factory.mktemp("cfg") / "c.yaml"
    path.write_text(yaml.safe_dump({"Arch": {"name": "ResNet18"}, section: {key: value}}))
    try:
        load_config(path)
    except PclsError as err:
        assert "\n" not in str(err)


@pytest.mark.parametrize("group", [[], ["data"], ["zoo"], ["recipes"]], ids=["pcls", "data", "zoo", "recipes"])
def test_command_lists_show_each_command_s_whole_first_sentence(group):
    import typer.main

    from pcls.cli import _first_sentence

    command = typer.main.get_command(app)
    for name in group:
        command = command.commands[name]
    output = runner.invoke(app, [*group, "--help"], terminal_width=200).output
    text = " ".join(output[output.index("Commands:"):].split())
    assert "..." not in text
    for name, child in command.commands.items():
        sentence = _first_sentence(child.help)
        assert sentence.endswith((".", ")")) or len(sentence) > 45, sentence
        assert f"{name} {sentence}" in text


@pytest.mark.parametrize("path", _all_command_paths(), ids=lambda p: " ".join(p))
def test_every_value_placeholder_is_a_capitalised_word(path):
    """One help style: no Typer `<str>` / `{directory}` placeholders for options, no empty `[default:  ]`."""
    lines = invoke(*path, "--help").output.splitlines()
    options = lines[next(i for i, line in enumerate(lines) if line.startswith("Options:")):]
    usage = lines[0]
    for line in options:
        assert not re.search(r"^\s+-.*<(str|int|float|path|int range)>", line), line
    assert not re.search(r"\{[a-z_]+\}", usage), usage
    assert "[default:  ]" not in "\n".join(lines)
