"""How long `pcls --help` (and the other no-paddle commands) take in a fresh process.

Target: under 0.5 s on the 2-core CI machine. Prints the median and best of N runs per command.
Usage: python benchmarks/bench_startup.py [N]
"""

import shutil
import statistics
import subprocess
import sys
import time

COMMANDS = [["--help"], ["recipes", "list"], ["zoo", "list"]]


def time_command(args, runs):
    exe = shutil.which("pcls")
    base = [exe] if exe else [sys.executable, "-m", "pcls"]
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(base + args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples), min(samples)


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    print(f"{'command':<24} {'median s':>9} {'best s':>8}   ({runs} fresh processes each)")
    for args in COMMANDS:
        median, best = time_command(args, runs)
        print(f"{'pcls ' + ' '.join(args):<24} {median:>9.3f} {best:>8.3f}")


if __name__ == "__main__":
    main()
