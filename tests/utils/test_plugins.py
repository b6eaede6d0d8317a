"""A PCLS_PLUGINS file that fails while loading is one line naming the file (#25.12), whatever it does."""

from __future__ import annotations

import pytest

from pcls.errors import PclsError
from pcls.utils.plugins import run_plugin


@pytest.mark.parametrize("code, fragment", [
    ("x = 1\nraise ValueError('bad plugin')\n", "raised ValueError: bad plugin at line 2 while loading"),
    ("def broken(:\n    pass\n", "has a syntax error at line 1"),
    ("import sys\nsys.exit(3)\n", "called sys.exit(3) while loading"),
    ("import sys\nsys.exit()\n", "called sys.exit(None) while loading"),
    ("from pcls.errors import PclsError\nraise PclsError('needs timm')\n", ": needs timm"),
    ("import no_such_module_anywhere\n", "raised ModuleNotFoundError: No module named 'no_such_module_anywhere'"),
])
def test_a_failing_plugin_is_one_line_naming_it(tmp_path, code, fragment):
    plugin = tmp_path / "my_models.py"
    plugin.write_text(code)
    with pytest.raises(PclsError) as err:
        run_plugin(plugin, "pcls_plugin_test")
    message = str(err.value)
    assert message.startswith(f"plugin {plugin} (PCLS_PLUGINS)") and fragment in message and "\n" not in message


def test_load_plugins_reports_the_plugin_file(tmp_path, monkeypatch):
    import pcls.engine.model as model

    plugin = tmp_path / "exits.py"
    plugin.write_text("import sys\nsys.exit('bye')\n")
    monkeypatch.setenv("PCLS_PLUGINS", str(plugin))
    monkeypatch.setattr(model, "_plugins_loaded", False)
    with pytest.raises(PclsError, match=f"plugin {plugin} .*sys.exit\\('bye'\\)"):
        model.load_plugins()


def test_a_working_plugin_runs_its_code(tmp_path):
    plugin = tmp_path / "ok.py"
    plugin.write_text("VALUE = 6 * 7\n")
    assert run_plugin(plugin, "pcls_plugin_ok").VALUE == 42
