"""`pcls serve` under load: p50/p99 latency and images/s at several client concurrencies, beside the model alone.

    python benchmarks/bench_serve.py                                  # ResNet50_vd and PPLCNet_x1_0, random weights
    python benchmarks/bench_serve.py --model inference/ --concurrency 1,16 --threads 2

Each model is exported with random weights (speed does not depend on them) unless --model is an export folder.
The server runs as a real `pcls serve` process on a loopback port; N concurrent httpx clients (one asyncio
process, requests built once and re-sent, so the clients cost little of the cores they share with the server)
post photo-sized JPEGs (500x375, base64) to /image-classification for a fixed number of requests per level, so the
run stops by itself. Beside each level: the model alone (`pcls bench`'s timing, data in memory) at the batch size
the server can form there (min(concurrency, --max-batch)), and decode + pre-processing of one image. At
concurrency 16 a second server runs with batching off (--max-batch 1) for the batching gain, and the model alone
runs at batch 1 too: its batch-16 / batch-1 ratio bounds what batching can gain on this CPU. Each level runs in
--rounds alternating rounds (server, model alone, unbatched server), so a change in the machine's load falls on
all of them alike.

CPU time is reported per image for the server process, the clients (this process while it drives) and the model
alone. On cores shared by server and clients, served images/s can reach at most model-only images/s times
model CPU / (server + client CPU) per image (the "CPU bound" column). Prints figures, the load average and each
goal of issue #27 as met or not; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
OPENMP_SPIN_S = 0.3


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(model_dir: Path, threads: int, max_batch: int, max_wait_ms: float, runtime: str, log_dir: Path,
                 timeout_s=600):
    import httpx

    log = open(log_dir / f"serve-{model_dir.name}-{max_batch}.log", "w")  # a file, never an unread pipe
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-m", "pcls", "serve", str(model_dir), "--port", str(port), "--threads", str(threads),
         "--max-batch", str(max_batch), "--max-wait-ms", str(max_wait_ms), "--runtime", runtime,
         "--max-queue", "1024", "--timeout", "600"],
        env=env, stdout=subprocess.DEVNULL, stderr=log, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"pcls serve exited: {Path(log.name).read_text()[-2000:]}")
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return process, base
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    process.kill()
    raise SystemExit("pcls serve did not become ready")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc): unlike wall time, barely moved by other load."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop_server(process) -> int:
    process.terminate()
    return process.wait(timeout=120)


async def drive(base: str, bodies: list, concurrency: int, requests: int, warmup: bool = False) -> dict:
    """`concurrency` clients post until `requests` answers are in: each request's latency, the wall time, and
    the CPU time this process spent driving them."""
    import httpx

    latencies, errors = [], 0
    counter = iter(range(requests))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=600, limits=limits) as client:
        # built once, sent many times: httpx's per-request URL, header and body handling is a sixth of its cost
        requests_built = [client.build_request("POST", "/image-classification", content=body,
                                               headers={"content-type": "application/json"}) for body in bodies]

        async def post(index: int):
            return await client.send(requests_built[index % len(requests_built)])

        async def client_loop():
            nonlocal errors
            for index in counter:
                start = time.perf_counter()
                response = await post(index)
                latencies.append(time.perf_counter() - start)
                errors += response.status_code != 200

        if warmup:  # connections, and the batch shapes this concurrency forms (a shape's first call is slow)
            await asyncio.gather(*(post(i) for i in range(concurrency)))
        start, cpu_start = time.perf_counter(), time.process_time()
        await asyncio.gather(*(client_loop() for _ in range(concurrency)))
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    return {"latencies": latencies, "wall": wall, "errors": errors, "client_cpu_s": cpu}


def summarise(runs: list) -> dict:
    """Rounds of one measurement as one: percentiles over every request, images/s over the summed wall time."""
    ms = np.asarray([t for run in runs for t in run["latencies"]]) * 1000
    return {"requests": int(ms.size), "errors": sum(run["errors"] for run in runs),
            "p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
            "images_per_s": ms.size / sum(run["wall"] for run in runs),
            "server_cpu_ms_per_image": 1000 * sum(run["server_cpu_s"] for run in runs) / ms.size,
            "client_cpu_ms_per_image": 1000 * sum(run["client_cpu_s"] for run in runs) / ms.size}


def decode_ms(predictor, jpegs: list) -> float:
    for data in jpegs[:3]:
        predictor.preprocess_one(data)
    start = time.perf_counter()
    for data in jpegs:
        predictor.preprocess_one(data)
    return (time.perf_counter() - start) / len(jpegs) * 1000


def export_random(name: str, out: Path) -> Path:
    from pcls.deploy.export import ExportRequest, export

    export(ExportRequest(model_name=name, out_dir=out, fmt="paddle"))
    return out


def time_model(predictor, batch: int, images: int) -> dict:
    """The model alone on an in-memory batch (`pcls bench`'s timing) for about `images` images (3 calls at
    least), with this process's CPU time per image."""
    from pcls.deploy.measure import time_models

    iters = max(3, images // batch)
    before = time.process_time()
    stats = time_models({"model": predictor.infer}, predictor.input_size, batch, warmup=1, iters=iters, rounds=1)
    cpu = (time.process_time() - before) / ((iters + 1) * batch)
    # the model alone runs as `pcls bench` does, with OpenMP's default spin after each call (KMP_BLOCKTIME,
    # 200 ms); let its threads go idle before the next round, so they take nothing from the server's
    time.sleep(OPENMP_SPIN_S)
    return {"images_per_s": stats["model"]["images_per_s"], "p99_ms": stats["model"]["p99_ms"], "cpu_s": cpu}


def median_of(runs: list, key: str) -> float:
    return float(np.median([run[key] for run in runs]))


def bench_one(model_dir: Path, args, jpegs: list, log_dir: Path) -> dict:
    """Per concurrency level, `--rounds` alternating rounds of: the server, the model alone, and (at 16) the
    server with batching off and the model alone at batch 1, so the machine's changing load falls on all alike."""
    from pcls.deploy.predictor import Predictor

    bodies = [json.dumps({"image": base64.b64encode(data).decode()}).encode() for data in jpegs]
    levels = [int(c) for c in args.concurrency.split(",")]
    predictor = Predictor(model_dir, runtime=args.runtime, threads=args.threads, batch_size=args.max_batch)
    decodes = [decode_ms(predictor, jpegs)]
    servers = {"on": start_server(model_dir, args.threads, args.max_batch, args.max_wait_ms, predictor.runtime,
                                  log_dir)}
    if 16 in levels:
        servers["off"] = start_server(model_dir, args.threads, 1, 0, predictor.runtime, log_dir)
    rows, unbatched = [], None
    try:
        for concurrency in levels:
            batch = min(concurrency, args.max_batch)
            per_round = max(concurrency, min(args.max_requests, max(args.min_requests, 4 * concurrency)) // args.rounds)
            wanted = [name for name in servers if name == "on" or concurrency == 16]
            for name in wanted:
                asyncio.run(drive(servers[name][1], bodies, concurrency, 0, warmup=True))
            runs, model, model_batch1 = {name: [] for name in wanted}, [], []
            for _ in range(args.rounds):
                for name in wanted:
                    before = cpu_seconds(servers[name][0].pid)
                    run = asyncio.run(drive(servers[name][1], bodies, concurrency, per_round))
                    run["server_cpu_s"] = cpu_seconds(servers[name][0].pid) - before
                    runs[name].append(run)
                model.append(time_model(predictor, batch, args.model_images))
                decodes.append(decode_ms(predictor, jpegs))  # per round too: the goal at 1 client adds it
                if concurrency == 16 and batch > 1:
                    model_batch1.append(time_model(predictor, 1, args.model_images))
            served = summarise(runs["on"])
            model_ips, model_cpu_ms = median_of(model, "images_per_s"), 1000 * median_of(model, "cpu_s")
            cpu_bound = model_cpu_ms / (served["server_cpu_ms_per_image"] + served["client_cpu_ms_per_image"])
            rows.append({"concurrency": concurrency, **served, "model_batch": batch, "model_images_per_s": model_ips,
                         "model_p99_ms": median_of(model, "p99_ms"),
                         "served_over_model": served["images_per_s"] / model_ips,
                         "model_cpu_ms_per_image": model_cpu_ms, "cpu_bound_served_over_model": cpu_bound,
                         "model_batch1_images_per_s": median_of(model_batch1, "images_per_s") if model_batch1
                         else model_ips})
            print(f"  concurrency {concurrency}: {served['images_per_s']:.1f} img/s, p50 {served['p50_ms']:.0f} ms, "
                  f"p99 {served['p99_ms']:.0f} ms, CPU ms/img server {served['server_cpu_ms_per_image']:.1f} + clients "
                  f"{served['client_cpu_ms_per_image']:.1f}; model alone at batch {batch}: {model_ips:.1f} img/s, "
                  f"CPU {model_cpu_ms:.1f} ms/img", flush=True)
            if "off" in runs:
                unbatched = summarise(runs["off"])
                print(f"  concurrency 16, batching off: {unbatched['images_per_s']:.1f} img/s", flush=True)
    finally:
        codes = {name: stop_server(process) for name, (process, _) in servers.items()}
    return {"model_dir": str(model_dir), "runtime": predictor.runtime, "decode_ms": float(np.median(decodes)),
            "rows": rows, "unbatched_c16": unbatched, "exit_codes_on_sigterm": codes}


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def report(name: str, found: dict) -> None:
    """The table for one model, then issue #27's three goals, each with the figure that bounds it here."""
    print(f"\n{name} ({found['runtime']}), decode + pre-process {found['decode_ms']:.1f} ms/image; "
          f"exit codes on SIGTERM {found['exit_codes_on_sigterm']}")
    print("clients | served img/s | p50 ms | p99 ms | model-only img/s (batch) | served/model | CPU bound | "
          "server CPU ms/img | client CPU ms/req | model CPU ms/img | errors")
    for r in found["rows"]:
        print(f"{r['concurrency']:>7} | {r['images_per_s']:>12.1f} | {r['p50_ms']:>6.0f} | {r['p99_ms']:>6.0f} | "
              f"{r['model_images_per_s']:>17.1f} ({r['model_batch']:>2}) | {r['served_over_model']:>12.2f} | "
              f"{r['cpu_bound_served_over_model']:>9.2f} | {r['server_cpu_ms_per_image']:>17.1f} | "
              f"{r['client_cpu_ms_per_image']:>17.2f} | {r['model_cpu_ms_per_image']:>16.1f} | {r['errors']}")
    c16 = next((r for r in found["rows"] if r["concurrency"] == 16), None)
    if c16:
        ratio = c16["served_over_model"]
        print(f"goal 1, served >= 0.85x model-only at 16 clients: {ratio:.2f}x, {verdict(ratio >= 0.85)} "
              f"(CPU bound on these shared cores: {c16['cpu_bound_served_over_model']:.2f}x)")
    if c16 and found["unbatched_c16"]:
        off = found["unbatched_c16"]
        gain = c16["images_per_s"] / off["images_per_s"]
        model_gain = c16["model_images_per_s"] / c16["model_batch1_images_per_s"]
        cpu_gain = ((off["server_cpu_ms_per_image"] + off["client_cpu_ms_per_image"])
                    / (c16["server_cpu_ms_per_image"] + c16["client_cpu_ms_per_image"]))
        print(f"goal 2, batching on >= 2x off at 16 clients: {c16['images_per_s']:.1f} vs {off['images_per_s']:.1f} "
              f"img/s = {gain:.2f}x, {verdict(gain >= 2)}; model alone batch {c16['model_batch']} / batch 1 = "
              f"{model_gain:.2f}x (what batching can gain on this CPU at most); server + client CPU per image "
              f"off / on = {cpu_gain:.2f}x")
    first = found["rows"][0]
    if first["concurrency"] == 1:
        budget = first["model_p99_ms"] + found["decode_ms"]
        print(f"goal 3, p99 at 1 client <= 1.2x (model-only p99 + decode): {first['p99_ms']:.0f} vs "
              f"{budget:.0f} ms = {first['p99_ms'] / budget:.2f}x, {verdict(first['p99_ms'] <= 1.2 * budget)} "
              f"(p50 {first['p50_ms']:.0f} ms; the clients' CPU per request {first['client_cpu_ms_per_image']:.1f} "
              "ms is on the same cores)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="ResNet50_vd,PPLCNet_x1_0",
                        help="comma-separated backbone names (exported with random weights) or export folders")
    parser.add_argument("--concurrency", default="1,4,16,64")
    parser.add_argument("--threads", type=int, default=2, help="model threads (the server's --threads)")
    parser.add_argument("--max-batch", type=int, default=16)
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    parser.add_argument("--runtime", default="paddle")
    parser.add_argument("--min-requests", type=int, default=64,
                        help="requests per level at least (p99 at 1 client needs some)")
    parser.add_argument("--max-requests", type=int, default=256, help="requests per level at most (4 x clients)")
    parser.add_argument("--model-images", type=int, default=64,
                        help="images per round of model-only timing (at least 3 calls)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per concurrency level")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()
    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)  # paddle's import turns the root logger's INFO on

    from pcls.deploy.bench import make_jpegs

    results = {"load_average_before": os.getloadavg(), "cpus": os.cpu_count(), "threads": args.threads,
               "kmp_blocktime_env": os.environ.get("KMP_BLOCKTIME"),
               "max_batch": args.max_batch, "max_wait_ms": args.max_wait_ms, "models": {}}
    with tempfile.TemporaryDirectory(prefix="pcls-bench-serve-") as work:
        jpegs = [p.read_bytes() for p in make_jpegs(Path(work) / "jpegs", count=16)]
        for name in args.model.split(","):
            folder = Path(name)
            if not folder.is_dir():
                print(f"{name}: exporting with random weights ...", flush=True)
                folder = export_random(name, Path(work) / name)
            print(f"{name}:", flush=True)
            results["models"][name] = bench_one(folder, args, jpegs, Path(work))
    results["load_average_after"] = os.getloadavg()

    print(f"\nload average before {results['load_average_before']}, after {results['load_average_after']} "
          f"on {results['cpus']} CPUs; model threads {args.threads}, max batch {args.max_batch}, "
          f"max wait {args.max_wait_ms} ms, KMP_BLOCKTIME in the environment {results['kmp_blocktime_env']} "
          "(unset: the server's default, the model alone OpenMP's)")
    busiest = max(results["load_average_before"][0], results["load_average_after"][0])
    if busiest > results["cpus"] / 2:
        print(f"note: load average {busiest:.1f} on {results['cpus']} CPUs: other processes shared the cores, so "
              "wall-clock figures (and the goals judged on them) moved with their load; CPU ms per image moves less")
    for name, found in results["models"].items():
        report(name, found)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
