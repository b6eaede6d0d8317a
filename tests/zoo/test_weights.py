"""Safe state-file reading/writing and load_pretrained's report on a tiny model."""

from __future__ import annotations

import pickle
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import paddle
import pytest

from pcls.arch.base import Classifier
from pcls.errors import PclsError
from pcls.utils.state_files import dump_pickle, load_state_file, save_state_file
from pcls.zoo import catalog
from pcls.zoo.weights import apply_state, load_pretrained, resolve_weights


class Tiny(Classifier):
    classifier_names = ("fc",)

    def __init__(self, class_num=10, channels=4):
        super().__init__()
        self.conv = paddle.nn.Conv2D(3, channels, 3)
        self.bn = paddle.nn.BatchNorm2D(channels)
        self.fc = paddle.nn.Linear(channels, class_num)

    def forward_features(self, x):
        return self.bn(self.conv(x))

    def forward_head(self, x):
        return self.fc(x.mean(axis=[2, 3]))


def _numpy_state(model) -> dict:
    return {k: v.numpy() for k, v in model.state_dict().items()}


def test_paddle_saved_state_dict_loads_bit_exactly(tmp_path):
    model = Tiny()
    paddle.save(model.state_dict(), str(tmp_path / "m.pdparams"))
    paddle.save(model.state_dict(), str(tmp_path / "m2.pdparams"), protocol=2)  # uses _codecs.encode
    for name in ("m.pdparams", "m2.pdparams"):
        state = load_state_file(tmp_path / name)
        assert set(state) == set(_numpy_state(model))  # the StructuredToParameterName@@ entry is dropped
        for key, value in _numpy_state(model).items():
            assert state[key].dtype == value.dtype and np.array_equal(state[key], value)


def test_save_state_file_round_trips_through_paddle_load(tmp_path):
    model = Tiny()
    path = save_state_file(model.state_dict(), tmp_path / "out" / "w.pdparams")
    assert [p.name for p in path.parent.iterdir()] == ["w.pdparams"]  # no temp file left
    loaded = paddle.load(str(path))  # our own file: paddle can read it too
    for key, value in _numpy_state(model).items():
        assert np.array_equal(np.asarray(loaded[key]), value)
    assert set(load_state_file(path)) == set(_numpy_state(model))


def test_safetensors_round_trip(tmp_path):
    pytest.importorskip("safetensors")
    state = {"a.weight": np.arange(6, dtype="float32").reshape(2, 3), "a._mean": np.ones(3, "float32")}
    path = save_state_file(state, tmp_path / "w.safetensors")
    loaded = load_state_file(path)
    assert set(loaded) == set(state) and all(np.array_equal(loaded[k], state[k]) for k in state)


class _RunsCode:
    """Unpickling this calls exec(): writes the marker file if the loader lets it run."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').write('ran')",)


def test_malicious_pickle_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "marker"
    evil = tmp_path / "evil.pdparams"
    evil.write_bytes(pickle.dumps({"fc.weight": np.zeros(2), "fc.bias": _RunsCode(marker)}, protocol=4))
    with pytest.raises(PclsError, match=r"refusing to load .*'builtins\.exec'"):
        load_state_file(evil)
    assert not marker.exists()

    old_style = tmp_path / "old.pdparams"  # protocol 0, GLOBAL opcode
    old_style.write_bytes(b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR.")
    with pytest.raises(PclsError, match=r"'os\.system'"):
        load_state_file(old_style)
    assert not marker.exists()


_PICKLE_READERS = {("paddle", "load"), ("pickle", "load"), ("pickle", "loads"), ("pickle", "Unpickler"),
                   ("pickle", "_Unpickler"),
                   ("paddle.framework", "load"), ("paddle.framework.io", "load")}
_THE_LOADER = "pcls/utils/state_files.py"


def _pickle_readers(source: str, rel: str) -> list:
    """Places in `source` that read a pickle other than through the restricted unpickler of _THE_LOADER."""
    import ast

    found = []
    for node in ast.walk(ast.parse(source)):
        where = f"{rel}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Attribute) and isinstance(node.value, (ast.Name, ast.Attribute)):
            pair = (ast.unparse(node.value), node.attr)
            if pair in _PICKLE_READERS and not (rel == _THE_LOADER and pair[1] in ("Unpickler", "_Unpickler")):
                found.append(f"{where} {ast.unparse(node)}")
        elif isinstance(node, ast.ImportFrom) and node.module in ("pickle", "paddle", "paddle.framework"):
            names = {alias.name for alias in node.names}
            if node.module == "pickle" or "load" in names:
                found.append(f"{where} from {node.module} import {', '.join(sorted(names))}")
        elif isinstance(node, ast.Import) and rel != _THE_LOADER:
            found += [f"{where} import {a.name}" for a in node.names if a.name in ("pickle", "_pickle", "dill")]
        elif isinstance(node, ast.keyword) and node.arg == "allow_pickle":
            if not (isinstance(node.value, ast.Constant) and node.value.value is False):
                found.append(f"{where} allow_pickle")
    return found


def test_no_module_reads_a_pickle_outside_the_one_restricted_loader():
    """Only pcls/utils/state_files.py may use the pickle module (its restricted unpickler); nothing may call
    paddle.load, pickle.load(s) or np.load(allow_pickle=True): each of them runs code a file names."""
    import pcls

    package = Path(pcls.__file__).parent
    offenders = []
    for path in sorted(package.rglob("*.py")):
        offenders += _pickle_readers(path.read_text(encoding="utf-8"), path.relative_to(package.parent).as_posix())
    assert not offenders, "pickle readers outside the restricted unpickler:\n" + "\n".join(offenders)


@pytest.mark.parametrize("code", ["import paddle\nstate = paddle.load(path)", "import pickle\npickle.loads(b)",
                                  "import pickle\nclass U(pickle._Unpickler): pass",
                                  "from paddle import load", "import numpy as np\nnp.load(f, allow_pickle=True)"])
def test_the_scan_finds_every_way_to_read_a_pickle(code):
    assert _pickle_readers(code, "pcls/engine/checkpoint.py")


@pytest.mark.parametrize(
    "content, message",
    [
        (pickle.dumps([1, 2, 3]), "not a state dict"),
        (pickle.dumps({"a": "text"}), "not a numeric array"),
        (b"PK\x03\x04zipdata", "zip archive"),
        (b"\x80\x04truncated", "not a readable .pdparams"),
    ],
)
def test_files_that_are_not_state_dicts(tmp_path, content, message):
    path = tmp_path / "bad.pdparams"
    path.write_bytes(content)
    with pytest.raises(PclsError, match=message):
        load_state_file(path)


def test_load_into_same_model_loads_everything(tmp_path):
    source = Tiny()
    path = save_state_file(source.state_dict(), tmp_path / "w.pdparams")
    target = Tiny()
    report = load_pretrained(target, str(path))
    assert (report.loaded, report.total, report.reinitialised) == (8, 8, [])
    assert str(report) == f"loaded 8/8 tensors from {path}"
    for key, value in _numpy_state(source).items():
        assert np.array_equal(target.state_dict()[key].numpy(), value)


def test_class_num_change_reinitialises_only_the_classifier_when_fine_tuning(tmp_path, caplog):
    source = Tiny(class_num=10)
    save_state_file(source.state_dict(), tmp_path / "w.pdparams")
    target = Tiny(class_num=5)
    fresh_fc = target.fc.weight.numpy().copy()

    # a path prefix, as PaddleClas configs give; re-initialising is an explicit opt-in (fine-tuning)
    with caplog.at_level("INFO"):
        report = load_pretrained(target, str(tmp_path / "w"), reinit_classifier=True)

    assert report.reinitialised == ["fc.weight", "fc.bias"]
    assert (report.loaded, report.total) == (6, 8)
    assert "re-initialised classifier fc.weight, fc.bias: class_num 10 -> 5" in caplog.text
    assert np.array_equal(target.fc.weight.numpy(), fresh_fc)
    assert np.array_equal(target.conv.weight.numpy(), source.conv.weight.numpy())
    assert np.array_equal(target.bn._variance.numpy(), source.bn._variance.numpy())


def test_class_num_mismatch_is_an_error_unless_fine_tuning(tmp_path):
    save_state_file(Tiny(class_num=7).state_dict(), tmp_path / "w7.pdparams")
    target = Tiny(class_num=10)
    before = {k: v.numpy().copy() for k, v in target.state_dict().items()}
    with pytest.raises(PclsError, match=r"have 7 classes but the .* is built for 10.*--class-num"):
        load_pretrained(target, str(tmp_path / "w7"))
    for key, value in target.state_dict().items():  # nothing half-loaded
        assert np.array_equal(value.numpy(), before[key]), key


def test_missing_unexpected_and_mismatched_keys_are_named():
    state = _numpy_state(Tiny(channels=4))
    state.pop("bn._mean")
    state["extra.weight"] = np.zeros(3, "float32")
    with pytest.raises(PclsError) as err:
        apply_state(Tiny(channels=6), state, "w.pdparams")
    message = str(err.value)
    assert "1 missing (bn._mean)" in message
    assert "1 unexpected (extra.weight)" in message
    assert "conv.weight: file [4, 3, 3, 3] vs model [6, 3, 3, 3]" in message


def test_adapt_state_dict_is_applied_first():
    class Adapting(Tiny):
        def adapt_state_dict(self, state):
            return {key.replace("old_", ""): value for key, value in state.items()}

    state = {f"old_{k}": v for k, v in _numpy_state(Tiny()).items()}
    assert apply_state(Adapting(), state).loaded == 8


def test_float16_weights_are_cast_to_the_model_dtype():
    state = {k: v.astype("float16") for k, v in _numpy_state(Tiny()).items()}
    model = Tiny()
    apply_state(model, state)
    assert str(model.conv.weight.dtype) == "paddle.float32"
    assert np.array_equal(model.conv.weight.numpy(), state["conv.weight"].astype("float32"))


def test_static_graph_sources_are_explained(tmp_path):
    (tmp_path / "ResNet50_pretrained").mkdir()
    with pytest.raises(PclsError, match="static-graph"):
        resolve_weights(str(tmp_path / "ResNet50_pretrained"))
    (tmp_path / "x.tar").write_bytes(b"")
    with pytest.raises(PclsError, match="static-graph"):
        resolve_weights(str(tmp_path / "x.tar"))
    with pytest.raises(PclsError, match="only a legacy static-graph archive"):
        resolve_weights("MobileNetV3_large_x1_0_ssld_int8")


def test_unknown_sources_are_clear_errors(tmp_path):
    with pytest.raises(PclsError, match="did you mean ResNet50_vd"):
        resolve_weights("ResNet50_vdd")
    with pytest.raises(PclsError, match="not found"):
        resolve_weights(str(tmp_path / "nothing.pdparams"))


def test_zoo_weights_come_through_the_mirror_into_the_cache(file_server, pcls_home, monkeypatch):
    entry = catalog.get_entry("ResNet50_vd_ssld")
    state = _numpy_state(Tiny())
    served = save_state_file(state, pcls_home.parent / "served.pdparams")
    file_server.files["/mirror" + urlsplit(entry["pretrained_url"]).path] = served.read_bytes()
    monkeypatch.setenv("PCLS_ZOO_MIRROR", file_server.url("/mirror"))

    path = resolve_weights("ResNet50_vd_ssld")

    assert path == pcls_home / "weights" / "ResNet50_vd_ssld.pdparams"
    assert path.read_bytes() == served.read_bytes()
    monkeypatch.setenv("PCLS_OFFLINE", "1")  # cached now: no network needed
    assert apply_state(Tiny(), load_state_file(resolve_weights("ResNet50_vd_ssld"))).loaded == 8


def _smallest_registered_zoo_model() -> str:
    import pcls

    rows = catalog.load_catalog()
    candidates = [n for n in pcls.list_models() if rows.get(n, {}).get("pretrained_url")]
    assert candidates, "no registered backbone has zoo weights: the arch families have not landed"
    return min(candidates, key=lambda n: rows[n]["params_m"] or float("inf"))


def test_create_model_pretrained_downloads_and_drops_the_classifier(file_server, pcls_home, monkeypatch, caplog):
    import pcls

    name = _smallest_registered_zoo_model()
    published = pcls.create_model(name)  # stands in for the zoo's ImageNet weights
    served = save_state_file(published.state_dict(), pcls_home.parent / "served.pdparams")
    file_server.files["/m" + urlsplit(catalog.get_entry(name)["pretrained_url"]).path] = served.read_bytes()
    monkeypatch.setenv("PCLS_ZOO_MIRROR", file_server.url("/m"))

    with caplog.at_level("INFO"):
        model = pcls.create_model(name, class_num=7, pretrained=True)

    assert (pcls_home / "weights" / f"{name}.pdparams").read_bytes() == served.read_bytes()
    head = tuple(model.classifier_prefixes())
    assert "class_num 1000 -> 7" in caplog.text
    expected = {k: v.numpy() for k, v in published.state_dict().items()}
    for key, value in model.state_dict().items():
        if not key.startswith(head):
            assert np.array_equal(value.numpy(), expected[key]), key
        else:
            assert value.shape[-1] == 7 or value.shape[0] == 7


def test_a_url_source_is_downloaded_into_the_cache(file_server, pcls_home):
    served = save_state_file(_numpy_state(Tiny()), pcls_home.parent / "served.pdparams")
    file_server.files["/any/where/best_model.pdparams"] = served.read_bytes()
    report = load_pretrained(Tiny(), file_server.url("/any/where/best_model.pdparams"))
    assert report.loaded == 8
    [cached] = (pcls_home / "weights" / "url").glob("*-best_model.pdparams")
    assert cached.read_bytes() == served.read_bytes()


@pytest.mark.parametrize("dtype", ["int8", "bool", "complex64", "<U3", "datetime64[s]", "V4"])
def test_weights_of_a_type_no_float_parameter_takes_are_one_line(tmp_path, dtype):
    """#25.12: integer, bool, complex, text, date and void weights are refused naming the tensor, no traceback."""
    state = _numpy_state(Tiny())
    state["fc.weight"] = np.zeros(state["fc.weight"].shape, dtype=dtype)
    path = tmp_path / "w.pdparams"
    dump_pickle(state, path)
    with pytest.raises(PclsError) as err:
        load_pretrained(Tiny(), path)
    message = str(err.value)
    assert "fc.weight" in message and str(np.dtype(dtype)) in message and "\n" not in message


def test_nan_and_inf_weights_load_with_a_warning_naming_them(caplog):
    state = _numpy_state(Tiny())
    state["fc.bias"][0] = np.nan
    state["conv.weight"][0, 0, 0, 0] = -np.inf
    with caplog.at_level("WARNING", logger="pcls.zoo.weights"):
        report = apply_state(Tiny(), state, "w.pdparams")
    assert sorted(report.nonfinite) == ["conv.weight", "fc.bias"]
    assert "NaN or Inf values in 2 tensors (conv.weight, fc.bias)" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="pcls.zoo.weights"):
        assert apply_state(Tiny(), _numpy_state(Tiny()), "w.pdparams").nonfinite == []
    assert "NaN" not in caplog.text
