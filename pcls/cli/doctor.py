"""`pcls doctor`: what this machine can do with pcls, and with --run the end-to-end self-check of every path."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from pcls.cli.common import JsonOpt, console, out, print_json, progress, table

MARK = {True: "✔", False: "✗"}
STATUS = {"pass": "pass", "fail": "FAIL", "skip": "skipped"}


def register(app: typer.Typer) -> None:
    @app.command("doctor")
    def _doctor(
        run: Annotated[bool, typer.Option(
            "--run", help="Also run every path end to end on generated data (train fp32/AMP O1/O2 with a resume, "
            "--gpus 0,1, export, TensorRT, ONNX Runtime CUDA/TensorRT, int8); exit code 1 when any fails. Rows "
            "this machine cannot run are skipped with the reason.")] = False,
        workdir: Annotated[Optional[str], typer.Option(
            "--workdir", metavar="DIR", help="Where --run writes its data, runs and exports (default: a temp "
            "folder, removed when every check passes).")] = None,
        json_out: JsonOpt = False,
    ):
        """Show what this machine can do: Python, Paddle build, GPUs, TensorRT, ONNX Runtime, CPU features and
        threads, then one row per capability with its fix.

        Example: pcls doctor --run
        """
        from pcls.doctor.capabilities import assess
        from pcls.doctor.probe import collect

        with console.status("probing Paddle, the GPUs, TensorRT and ONNX Runtime ..."):
            facts = collect()
        rows = assess(facts)
        result = {"environment": facts, "capabilities": [row.to_dict() for row in rows]}
        if not json_out:
            out.print(table("environment", ["", "found", "details"], environment_rows(facts)))
            out.print(table("capabilities", ["capability", "", "why", "fix"],
                            [(row.name, MARK[row.ok], row.reason, row.fix or None) for row in rows]))
        if run:
            report = _run_checks(rows, workdir, json_out)
            result.update(report)
        if json_out:
            print_json(result)
        if run and not result["passed"]:
            raise typer.Exit(1)


def _run_checks(rows, workdir: Optional[str], json_out: bool) -> dict:
    from pcls.doctor.selfcheck import STEPS, run_checks

    with progress(transient=True) as bar:
        task = bar.add_task("self-check", total=len(STEPS), rate="", info="")
        report = run_checks(rows, Path(workdir) if workdir else None, steps=STEPS,
                            on_step=lambda name: bar.update(task, info=name),
                            on_done=lambda outcome: bar.advance(task))
    if not json_out:
        out.print(table("self-check", ["check", "result", "s", "details / first error line"],
                        [(c["name"], STATUS[c["status"]], f"{c['seconds']:.1f}", c["detail"])
                         for c in report["checks"]]))
        failed = sum(c["status"] == "fail" for c in report["checks"])
        skipped = sum(c["status"] == "skip" for c in report["checks"])
        verdict = f"{failed} failed" if failed else "all run checks passed"
        console.print(f"{verdict}, {skipped} skipped" + (f"; outputs kept in {report['workdir']}"
                                                          if report["workdir"] else ""))
    return report


def environment_rows(facts: dict) -> list:
    """The environment table: one row per component, '-' for what is absent."""
    rows = [("Python", facts["python"]["version"], facts["python"]["executable"])]
    p = facts["paddle"]
    if p.get("installed"):
        runtime = p.get("runtime") or {}
        build = (f"CUDA {p['cuda']}, cuDNN {p.get('cudnn')}, NCCL {p.get('nccl') or '-'}, TensorRT "
                 f"{p.get('tensorrt') or '-'}" if p.get("cuda") else "CPU build")
        pir = {True: "PIR on", False: "PIR off"}.get(runtime.get("pir"), "")
        dists = p.get("distributions") or []
        note = f"; both {' and '.join(dists)} installed" if len(dists) > 1 else ""
        rows.append(("Paddle", p.get("version"), ", ".join(x for x in (build, pir) if x) + note
                     + (f"; {runtime['error']}" if runtime.get("error") else "")))
    else:
        rows.append(("Paddle", None, "not installed"))
    for gpu in facts.get("gpus") or []:
        rows.append((f"GPU {gpu['id']}", gpu["name"], f"{gpu['memory_gb']} GB, compute capability "
                     f"{gpu['compute_capability']}, fp16 {MARK[gpu['fp16']]}, bf16 {MARK[gpu['bf16']]}"))
    gpu_error = (p.get("runtime") or {}).get("gpu_error")
    if gpu_error:
        rows.append(("GPU", None, gpu_error))
    trt = facts.get("tensorrt") or {}
    libs = trt.get("error") or ", ".join(sorted(trt.get("libraries") or {})) or "no libnvinfer* found"
    rows.append(("TensorRT", trt.get("python"), f"{libs}; libnvinfer_plugin.so loadable by name "
                 f"{MARK[bool(trt.get('plugin_loadable'))]}"))
    ort = facts.get("onnxruntime") or {}
    rows.append(("ONNX Runtime", ort.get("version"), ort.get("error") or ", ".join(ort.get("providers") or [])
                 or ("not installed" if not ort else None)))
    rows.append(("paddle2onnx", facts.get("paddle2onnx"), None if facts.get("paddle2onnx") else "not installed"))
    ov = facts.get("openvino") or {}
    rows.append(("OpenVINO", ov.get("version"), ov.get("error") or ", ".join(ov.get("devices") or [])
                 or ("not installed" if not ov else None)))
    rows.append(("OpenCV", facts.get("opencv"), None))
    rows.append(("numpy", facts.get("numpy"), None))
    cpu = facts["cpu"]
    features = " ".join(f"{name} {MARK[has]}" for name, has in (cpu.get("features") or {}).items())
    rows.append(("CPU", cpu.get("model"), cpu.get("error") or features or "features unknown"))
    threads = facts.get("threads") or {}
    rows.append(("cores", f"{cpu.get('usable_cores')} usable of {cpu.get('online_cores')}",
                 threads.get("error") or f"train: {threads.get('train')} thread(s) per process "
                 f"({threads.get('train_source')}); predict/bench: {threads.get('predict')} thread(s)"))
    return rows
