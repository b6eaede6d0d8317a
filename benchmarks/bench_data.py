"""Data-pipeline throughput on generated 500x375 JPEGs with the ImageNet train/eval pipelines.

Prints images/s per worker for decode-only and the full pipelines, and the DataLoader total.
Usage: python benchmarks/bench_data.py [--images 512] [--workers 2] [--json]
"""

import argparse
import json
import tempfile

from pcls.data.bench import imagenet_bench_config, make_bench_images, print_data_bench, run_data_bench


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3, help="runs; the best per figure is reported")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        list_path = make_bench_images(tmp, n=args.images)
        cfg = imagenet_bench_config(tmp, list_path, num_workers=args.workers)
        runs = [run_data_bench(cfg, max_images=args.images) for _ in range(args.repeat)]
    best = runs[0]
    for k, section in enumerate(best["sections"]):
        for key in ("decode_ips_per_worker", "pipeline_ips_per_worker", "loader_ips_total"):
            section[key] = max(run["sections"][k][key] for run in runs)
        section["pipeline_fraction_of_decode"] = section["pipeline_ips_per_worker"] / section["decode_ips_per_worker"]
        section["pipeline_cost_vs_decode"] = 1 / section["pipeline_fraction_of_decode"]
        section["loader_fraction_of_decode_ceiling"] = section["loader_ips_total"] / (
            section["decode_ips_per_worker"] * max(section["num_workers"], 1))
    if args.json:
        print(json.dumps(best, indent=2))
    else:
        print_data_bench(best)


if __name__ == "__main__":
    main()
