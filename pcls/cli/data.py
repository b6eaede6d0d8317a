"""`pcls data`: Prepare datasets: flowers102 download, class-folder indexing, list checks, the demo set."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from pcls.cli.common import JsonOpt, console, out, print_json, table

app = typer.Typer(
    help="Prepare datasets: flowers102 download, class-folder indexing, list checks, the demo set.\n\n"
    "Example: pcls data demo data/demo",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@app.command("flowers102")
def flowers102(
    root: Annotated[str, typer.Option("--root", help="Folder to download into and write the lists in.")] = "dataset/flowers102",
    url_base: Annotated[
        Optional[str],
        typer.Option("--url-base", help="Base URL of the three files (a mirror); default $PCLS_DATA_MIRROR or the Oxford VGG site."),
    ] = None,
    as_json: JsonOpt = False,
):
    """Download flowers102 and write train/val/extra/train_extra lists.

    Example: pcls data flowers102 --root dataset/flowers102
    """
    from pcls.data.flowers102 import prepare_flowers102

    result = prepare_flowers102(root, url_base, progress=not as_json)
    if as_json:
        print_json(result)
        return
    out.print(table(f"flowers102 in {result['root']} ({result['classes']} classes)", ["list file", "images"],
                    result["lists"].items()))
    out.print(f"image_root: {result['root']}  (use with cls_label_path {result['root']}/train_list.txt)")


@app.command("index")
def index(
    directory: Annotated[str, typer.Argument(help="Folder of class folders (DIR/<class>/*.jpg or DIR/train/<class>/*.jpg).")],
    val_split: Annotated[float, typer.Option("--val-split", help="Fraction of each class to put in val_list.txt.")] = 0.0,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the stratified split.")] = 0,
    out_dir: Annotated[Optional[str], typer.Option("--out", help="Where to write the lists (default: DIR).")] = None,
    as_json: JsonOpt = False,
):
    """Write list files and labels.txt from class folders.

    Example: pcls data index photos/ --val-split 0.1 --seed 0
    """
    from pcls.data.lists import index_folders

    result = index_folders(directory, val_split=val_split, seed=seed, out_dir=out_dir)
    for item in result["skipped"]:  # on stderr with --json too: the user should see them
        console.print(f"skipped {item['path']}: {item['reason']}", style="yellow", highlight=False, soft_wrap=True)
    if as_json:
        print_json(result)
        return
    rows = [(result["files"][f"{split}_list"], n) for split, n in result["counts"].items()]
    rows.append((result["files"]["labels"], f"{result['classes']} classes"))
    out.print(table(f"indexed {result['image_root']}", ["file", "entries"], rows))
    out.print(f"image_root: {result['image_root']}")


@app.command("check")
def check(
    list_file: Annotated[str, typer.Argument(help="A list file: lines 'relative/path.jpg label'.")],
    root: Annotated[str, typer.Option("--root", help="The image_root the paths are relative to.")] = ".",
    class_num: Annotated[
        Optional[int], typer.Option("--class-num", help="Labels must be below this (default: from labels.txt if present).")
    ] = None,
    delimiter: Annotated[str, typer.Option("--delimiter", help="Separator before the label (default: whitespace).")] = " ",
    allow_unlabeled: Annotated[bool, typer.Option("--allow-unlabeled", help="Accept lines with a path only.")] = False,
    no_decode: Annotated[bool, typer.Option("--no-decode", help="Only check that files exist (faster).")] = False,
    show: Annotated[int, typer.Option("--show", help="How many bad lines to print.")] = 20,
    as_json: JsonOpt = False,
):
    """Check that every line parses, every image exists and decodes, every label is in range (exit 1 if not).

    Paths that leave --root (absolute, or '..' above it) are reported as warnings with file:line.

    Example: pcls data check dataset/flowers102/train_list.txt --root dataset/flowers102
    """
    from pcls.cli.common import progress
    from pcls.data.lists import check_list, count_lines

    total = count_lines(list_file) if not as_json else 0
    if as_json:
        result = check_list(list_file, root, class_num=class_num, delimiter=delimiter,
                            allow_unlabeled=allow_unlabeled, decode=not no_decode)
    else:
        with progress(transient=True) as bar:
            task = bar.add_task("checking", total=total, rate="", info="")
            result = check_list(list_file, root, class_num=class_num, delimiter=delimiter,
                                allow_unlabeled=allow_unlabeled, decode=not no_decode,
                                on_progress=lambda n: bar.advance(task, n))
    if as_json:
        print_json(result)
    else:
        _print_check(result, show)
    for warning in result["warnings"][:show]:  # on stderr with --json too: the user should see them
        text = f"warning: {result['list']}:{warning['line']}: {warning['path']}: {warning['warning']}"
        console.print(text, style="yellow", highlight=False, soft_wrap=True)
    if not result["ok"]:
        raise typer.Exit(1)


def _print_check(result: dict, show: int) -> None:
    per_class = result["per_class"]
    counts = list(per_class.values())
    summary = [
        ("list", result["list"]),
        ("lines", result["lines"]),
        ("good samples", result["samples"]),
        ("problems", len(result["problems"])),
        ("class_num", result["class_num"]),
        ("classes with samples", result["classes_seen"]),
        ("images per class (min/median/max)",
         f"{min(counts)}/{sorted(counts)[len(counts) // 2]}/{max(counts)}" if counts else None),
    ]
    out.print(table("data check", ["", "value"], summary))
    if len(per_class) <= 30:
        out.print(table("images per class", ["label", "images"], per_class.items()))
    if result["class_num"]:
        empty = [c for c in range(result["class_num"]) if c not in per_class]
        if empty:
            out.print(f"classes with no images: {', '.join(map(str, empty[:20]))}{' ...' if len(empty) > 20 else ''}")
    problems = result["problems"]
    if problems:
        out.print(table(f"bad lines (first {min(show, len(problems))} of {len(problems)})", ["line", "path", "problem"],
                        [(p["line"], p["path"], p["problem"]) for p in problems[:show]]))
    elif not result["warnings"]:
        console.print("all lines OK", style="green")


@app.command("demo")
def demo(
    directory: Annotated[str, typer.Argument(help="Folder to write the demo dataset into.")],
    size: Annotated[int, typer.Option("--size", help="Image side in pixels.")] = 64,
    train_per_class: Annotated[int, typer.Option("--train-per-class", help="Training images per class.")] = 250,
    val_per_class: Annotated[int, typer.Option("--val-per-class", help="Validation images per class.")] = 50,
    seed: Annotated[int, typer.Option("--seed", help="Generation seed (same seed, same images).")] = 0,
    force: Annotated[bool, typer.Option("--force", help="Regenerate even if a matching set exists.")] = False,
    as_json: JsonOpt = False,
):
    """Write the built-in demo dataset (10 classes of coloured shapes, deterministic).

    Example: pcls data demo data/demo
    """
    from pcls.data.demo import make_demo_dataset
    from pcls.errors import PclsError

    if size < 16 or train_per_class < 1 or val_per_class < 1:
        raise PclsError("--size must be >= 16 and --train-per-class/--val-per-class >= 1")
    paths = make_demo_dataset(directory, size=size, train_per_class=train_per_class, val_per_class=val_per_class,
                              seed=seed, force=force)
    result = {k: str(v) for k, v in paths.items()}
    result["classes"] = 10
    result["train_images"] = 10 * train_per_class
    result["val_images"] = 10 * val_per_class
    if as_json:
        print_json(result)
        return
    out.print(table(f"demo dataset in {directory}", ["", "value"], result.items()))
