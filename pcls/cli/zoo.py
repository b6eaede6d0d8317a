"""`pcls zoo`: browse the pretrained model catalog, download weights into the cache, convert them.

Only `info --measure` imports paddle (to build the model); everything else reads the shipped catalog.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, List, Optional

import typer

from pcls.cli.common import JsonOpt, console, fail, out, print_json, table
from pcls.utils.text import percent

app = typer.Typer(
    help="Browse the pretrained model zoo, download weights into the cache, convert them.\n\n"
    "Environment: PCLS_HOME is the cache root (default ~/.cache/pcls); PCLS_ZOO_MIRROR=URL replaces the "
    "zoo's host with a mirror; PCLS_OFFLINE=1 forbids network use.\n\nExample: pcls zoo download ResNet50_vd_ssld",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def _complete_name(incomplete: str) -> list:
    from pcls.zoo.catalog import complete_names  # the catalog is JSON: completing never imports paddle

    return complete_names(incomplete)


def _complete_family(incomplete: str) -> list:
    from pcls.zoo.catalog import complete_families

    return complete_families(incomplete)


class SortKey(str, Enum):
    name = "name"
    top1 = "top1"
    params = "params"
    flops = "flops"
    latency = "latency"


class Format(str, Enum):
    safetensors = "safetensors"
    pdparams = "pdparams"


def _number(value, digits: int):
    return None if value is None else f"{value:.{digits}f}"


def _latency_text(row) -> Optional[str]:
    from pcls.zoo.catalog import latency

    key, value = latency(row)
    if key is None:
        return None
    device, runtime, precision = key.split("_")[:3]  # e.g. P4_fluid_fp32_bs1
    return f"{value:.2f} {device} {runtime}" + (f" {precision}" if precision != "fp32" else "")


def _sort_key(sort: SortKey):
    from pcls.zoo.catalog import LATENCY_KEYS, latency

    missing_last = float("inf")
    if sort is SortKey.top1:
        return lambda r: -r["top1"] if r.get("top1") is not None else missing_last
    if sort is SortKey.params:
        return lambda r: r["params_m"] if r.get("params_m") is not None else missing_last
    if sort is SortKey.flops:
        return lambda r: r["flops_g"] if r.get("flops_g") is not None else missing_last

    def by_latency(row):  # figures from one device and runtime sort together, fastest first
        key, value = latency(row)
        if key is None:
            return (len(LATENCY_KEYS) + 1, missing_last)
        return (LATENCY_KEYS.index(key) if key in LATENCY_KEYS else len(LATENCY_KEYS), value)

    return by_latency if sort is SortKey.latency else (lambda r: r["name"].lower())


@app.command("list")
def list_command(
    pattern: Annotated[
        Optional[str], typer.Argument(
            help="Shell pattern or part of the name (case-insensitive), e.g. 'ResNet50*'.", metavar="PATTERN"
        )
    ] = None,
    family: Annotated[Optional[str], typer.Option("--family", "-f", help="Only this family, e.g. MobileNetV3.",
                                                  autocompletion=_complete_family)] = None,
    sort: Annotated[
        SortKey, typer.Option("--sort", help="Order: name, top1 (best first), params, flops, latency.")
    ] = SortKey.name,
    as_json: JsonOpt = False,
):
    """List the zoo's pretrained models with their ImageNet metrics. Example: pcls zoo list resnet50 --sort top1"""
    from pcls.errors import did_you_mean
    from pcls.zoo import catalog
    from pcls.zoo.cache import weights_path

    rows = [catalog.load_catalog()[n] for n in catalog.names(pattern or "*")]
    if family:
        families = catalog.families()
        chosen = next((f for f in families if f.lower() == family.lower()), None)
        if chosen is None:
            fail(f"unknown family '{family}'{did_you_mean(family, families)}; families: {', '.join(families)}")
        rows = [r for r in rows if r.get("family") == chosen]
    if not rows:
        fail(f"no zoo model matches '{pattern}'" + (f" in family {family}" if family else "") + "; see 'pcls zoo list'")
    rows.sort(key=_sort_key(sort))
    cached = {r["name"]: weights_path(r["name"]).is_file() for r in rows}

    if as_json:
        fields = ("name", "arch", "family", "top1", "top5", "params_m", "flops_g", "input_size", "latency_ms")
        print_json([{**{f: r.get(f) for f in fields}, "cached": cached[r["name"]]} for r in rows])
        return
    columns = ["Name", "Family", "Top-1", "Params M", "GFLOPs", "Input", "Latency ms", "Cached"]
    body = [
        (
            r["name"],
            r.get("family"),
            percent(r.get("top1")),
            _number(r.get("params_m"), 2),
            _number(r.get("flops_g"), 2),
            r.get("input_size"),
            _latency_text(r),
            "yes" if cached[r["name"]] else "",
        )
        for r in rows
    ]
    listing = table(None, columns, body)
    listing.columns[0].no_wrap = True  # a model name is what users copy: never cut it
    print_wide(listing)
    summary = f"{len(rows)} models, {sum(cached.values())} downloaded; details: pcls zoo info NAME"
    console.print(summary, highlight=False)


def print_wide(renderable) -> None:
    """Print on stdout; when piped, as wide as the content needs (whole rows for grep), not 80 columns: what
    every `out.print` does now (pcls.utils.console.PipeConsole). (`pcls recipes` prints its tables through it too.)"""
    out.print(renderable)


def _cache_state(name: str) -> dict:
    """Where the weights of `name` are and what the cache knows about them (size check only: cheap)."""
    from pcls.zoo.cache import read_record, static_dir, weights_path

    path = weights_path(name)
    state = {"path": str(path), "present": path.is_file()}
    if state["present"]:
        record = read_record(path) or {}
        size = path.stat().st_size
        state.update(size=size, sha256=record.get("sha256"), downloaded=record.get("downloaded"))
        state["size_matches_record"] = record.get("size") in (None, size)
    static = static_dir(name)
    if static.is_dir():
        state["static_dir"] = str(static)
    return state


def _cache_text(cache: dict, name: str) -> str:
    if not cache["present"]:
        return f"not downloaded (pcls zoo download {name})"
    text = f"yes, {cache['size'] / 1e6:.1f} MB"
    if cache.get("sha256"):
        text += f", sha256 {cache['sha256'][:16]}..., downloaded {cache['downloaded']}"
    if not cache["size_matches_record"]:
        text += " - CHANGED since download (size differs); delete it and download again"
    return text


def _measure(arch: Optional[str], input_size: Optional[int]) -> dict:
    if not arch:
        fail("--measure needs an architecture pcls can build; this zoo entry has none")
    try:
        from pcls.arch.measure import measure
    except ImportError as err:
        fail(f"--measure is unavailable: pcls.arch.measure cannot be imported ({err})")
    result = measure(arch, input_size=input_size)  # the entry's size: Fix_* models run larger than their arch
    return {"params": int(result["params"]), "macs": int(result["macs"]), "flops": 2 * int(result["macs"])}


@app.command("info")
def info(
    name: Annotated[str, typer.Argument(help="A zoo model name (see 'pcls zoo list').", metavar="NAME",
                                        autocompletion=_complete_name)],
    measure: Annotated[
        bool, typer.Option("--measure", help="Also build the model and count its params and MACs (imports paddle).")
    ] = False,
    as_json: JsonOpt = False,
):
    """Everything the zoo knows about one model, and its local cache state. Example: pcls zoo info ResNet50_vd_ssld"""
    from pcls.zoo import catalog
    from pcls.zoo.cache import mirrored

    entry = catalog.get_entry(name)
    cache = _cache_state(name)
    measured = _measure(entry.get("arch"), entry.get("input_size")) if measure else None
    if as_json:
        print_json({**entry, "cache": cache, **({"measured": measured} if measured else {})})
        return

    flops, params = entry.get("flops_g"), entry.get("params_m")
    rows = [
        ("Architecture", entry.get("arch")),
        ("Family", entry.get("family")),
        ("Paper", entry.get("paper")),
        ("Top-1 (ImageNet val)", percent(entry.get("top1"))),
        ("Top-5 (ImageNet val)", percent(entry.get("top5"))),
        ("Params (M)", _number(params, 3)),
        ("FLOPs (G)", _number(flops, 3)),
        ("MACs (G) = FLOPs / 2", _number(flops / 2 if flops is not None else None, 3)),
    ]
    if measured:
        rows += [
            ("Measured params (M)", f"{measured['params'] / 1e6:.3f}"),
            ("Measured MACs (G)", f"{measured['macs'] / 1e9:.3f}"),
            ("Measured FLOPs (G) = 2 x MACs", f"{measured['flops'] / 1e9:.3f}"),
        ]
    pre = catalog.preprocess_for(name)
    size = entry.get("input_size")
    rows += [
        ("Input size", size),
        ("Resize short side", entry.get("resize_short")) if pre["resize_mode"] == "short" else
        ("Resize", f"the whole image to {size} x {size} (aspect not kept, no crop)"),
        ("Interpolation", f"{pre['interpolation']} ({pre['backend']})"),
        ("Mean / std", f"{pre['mean']} / {pre['std']}"),
    ]
    if pre["decode_backend"] != "cv2" or not pre["to_rgb"]:
        rows.append(("Decoding", f"{pre['decode_backend']}, " + ("RGB" if pre["to_rgb"] else "BGR (as PaddleClas's "
                                                                                             "eval config)")))
    rows += [(label, entry[key]) for label, key in
             (("Pre-processing note", "preprocess_note"), ("Note", "note"), ("PaddleClas config", "config"))
             if entry.get(key)]
    rows += [(f"Latency ms, {key}", value) for key, value in (entry.get("latency_ms") or {}).items()]
    url = entry.get("pretrained_url")
    rows += [
        ("Pretrained weights", (mirrored(url) if url else "none (only a legacy static-graph archive)")),
        ("Static-graph archive", entry.get("static_tar_url")),
        ("Cache path", cache["path"]),
        ("Cached", _cache_text(cache, name)),
    ]
    if cache.get("static_dir"):
        rows.append(("Static-graph folder", cache["static_dir"]))
    print_wide(table(name, ["Field", "Value"], rows))


def _expand(names: List[str]) -> list:
    """Zoo names, with shell patterns expanded; every name is checked before any download starts."""
    from pcls.zoo import catalog

    chosen = []
    for name in names:
        if any(ch in name for ch in "*?["):
            matches = catalog.names(name)
            if not matches:
                fail(f"no zoo model matches '{name}'; see 'pcls zoo list'")
            chosen += matches
        else:
            chosen.append(catalog.get_entry(name)["name"])
    return list(dict.fromkeys(chosen))


@app.command("download")
def download(
    names: Annotated[
        List[str], typer.Argument(
            help="Zoo model names or shell patterns, e.g. ResNet50_vd_ssld 'PPLCNet*'.", metavar="NAME",
            autocompletion=_complete_name,
        )
    ],
    directory: Annotated[
        Optional[Path], typer.Option("--dir", help="Download into this folder instead of $PCLS_HOME/weights.")
    ] = None,
    static: Annotated[
        bool, typer.Option("--static", help="Fetch the legacy static-graph .tar instead and extract it.")
    ] = False,
    as_json: JsonOpt = False,
):
    """Download pretrained weights (resumable, verified, cached). Example: pcls zoo download ResNet50_vd_ssld"""
    from pcls.errors import PclsError
    from pcls.zoo.cache import read_record
    from pcls.zoo.catalog import get_entry
    from pcls.zoo.download import download_weights

    results, failures = [], []
    for name in _expand(names):
        legacy = static or not get_entry(name).get("pretrained_url")
        try:
            path = download_weights(name, directory=directory, static=static, progress=not as_json)
        except PclsError as err:
            failures.append(f"{name}: {err.message}")
            continue
        if legacy:
            console.print(
                f"{name}: static-graph parameter files extracted to {path}; they are not loadable as a "
                f"dygraph state dict (create_model / pretrained_model need .pdparams)",
                highlight=False,
            )
            archive = path.with_name(f"{name}.tar")
            record = read_record(archive) or {}
        else:
            record = read_record(path) or {}
        results.append({"name": name, "path": str(path), "size": record.get("size"), "sha256": record.get("sha256")})

    if as_json:
        print_json(results)
    elif results:
        rows = [(r["name"], r["path"], _number(r["size"] / 1e6 if r["size"] else None, 1), (r["sha256"] or "")[:16])
                for r in results]
        out.print(table(None, ["Name", "Path", "Size (MB)", "sha256"], rows))
    if failures:
        fail(f"{len(failures)} of {len(failures) + len(results)} downloads failed: " + " | ".join(failures))


@app.command("path")
def path(
    name: Annotated[str, typer.Argument(help="A zoo model name.", metavar="NAME", autocompletion=_complete_name)],
    static: Annotated[bool, typer.Option("--static", help="The folder of the extracted static-graph archive.")] = False,
):
    """Print where the cached weights of a model are (or will be). Example: pcls zoo path ResNet50_vd_ssld"""
    from pcls.zoo.cache import static_dir, weights_path
    from pcls.zoo.catalog import get_entry

    entry = get_entry(name)
    legacy = static or not entry.get("pretrained_url")
    target = static_dir(name) if legacy else weights_path(name)
    out.print(str(target), highlight=False, soft_wrap=True)
    if not target.exists():
        console.print(f"not downloaded yet: pcls zoo download {name}{' --static' if static else ''}", highlight=False)


@app.command("convert")
def convert(
    source: Annotated[str, typer.Argument(
            help="A zoo model name or a weights file (.pdparams or .safetensors).", metavar="NAME|PATH",
            autocompletion=_complete_name,  # no zoo name matches: the shell completes file names
        )],
    to: Annotated[Format, typer.Option("--to", help="Target format.")] = Format.safetensors,
    output: Annotated[
        Optional[Path], typer.Option("-o", "--output", help="Output file (default: beside the source).")
    ] = None,
):
    """Convert weights between .pdparams and .safetensors (read safely, written atomically).
    Example: pcls zoo convert ResNet50_vd_ssld --to safetensors"""
    from pcls.utils.state_files import load_state_file, save_state_file
    from pcls.zoo.weights import resolve_weights

    src = resolve_weights(source)
    target = output or src.with_suffix(f".{to.value}")
    if target.resolve() == src.resolve():
        fail(f"{src} is already a .{to.value} file; give another --output")
    state = load_state_file(src)
    save_state_file(state, target)
    console.print(f"converted {len(state)} tensors", highlight=False)
    out.print(str(target), highlight=False, soft_wrap=True)
