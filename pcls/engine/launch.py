"""Multi-process training through `python -m paddle.distributed.launch`: the command line, and a runner that
owns the launcher's process group so that no worker outlives the job.

Paddle's launcher appends worker logs to ./log and starts each worker in a session of its own, so a
SIGKILLed launcher leaves its workers running. Hence: every job gets `--log_dir <run>/log`; the launcher
runs in its own session and gets SIGKILL when pcls exits (Linux parent-death signal), and every worker
asks for the same when the launcher exits (`die_with_parent`, called first thing in worker.py); the
runner also kills the launcher's children itself when the job ends, fails or is interrupted. A crashing
rank makes the others fail on a gloo/NCCL timeout and the launcher exit non-zero; the runner then
reports the first worker traceback it finds. Paddle's launcher looks at its workers once a second and then
takes a while to exit, so each worker leaves its exit code in the log folder (`record_exit`, deleted with
the dumps below) and the runner ends the job itself as soon as every local worker exited with 0.

The launcher also dumps the whole environment (tokens included) into its log folder (`envlog.N`,
`backup_env.N.json`, `default.*.log`); workers read `backup_env` while they start, so the runner deletes
those files when the job ends (done, failed or interrupted): a finished run folder keeps no secret. `train_distributed` is the engine's entry point: checks, run directory,
job spec, launch, rank 0's summary.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Optional, Sequence

from pcls.engine.progress_events import ProgressRelay, parse_progress_line
from pcls.errors import PclsError

log = logging.getLogger(__name__)
# the launcher's copies of the environment: never kept (they hold every variable, secrets included)
ENV_DUMPS = ("envlog.*", "backup_env.*", "default.*.log")
# each worker's exit code as it returns (record_exit); deleted with the dumps
EXIT_MARKS = "exit.*"
# launcher / paddle chatter in rank 0's log that the user does not need to see
_NOISE = re.compile(r"^([IWE]\d{4} |\s|=+$|FLAGS\(|.*warnings\.warn|.*ccache|.*Modified FLAGS|LAUNCH )")


def launch_command(script: str, script_args: Sequence[str], *, log_dir, nproc: Optional[int] = None,
                   gpus: Optional[str] = None, ips: Optional[str] = None, master: Optional[str] = None) -> List[str]:
    """The `python -m paddle.distributed.launch ...` argv for `script` (a file path) on this node.

    gpus "0,1": one process per listed GPU (collective/NCCL); nproc N without gpus: N CPU processes
    (gloo). ips "host1,host2": multi-node; run the same command on every host.
    """
    cmd = [sys.executable, "-m", "paddle.distributed.launch", "--log_dir", str(log_dir)]
    if gpus:
        cmd += ["--devices", gpus]
    elif nproc:
        cmd += ["--nproc_per_node", str(int(nproc))]
    hosts = _hosts(ips)
    if len(hosts) > 1:
        cmd += ["--ips", ",".join(hosts)]
    if master:
        cmd += ["--master", master]
    return cmd + [str(script), *map(str, script_args)]


def _hosts(ips: Optional[str]) -> list:
    return [h.strip() for h in (ips or "").split(",") if h.strip()]


def die_with_parent() -> None:
    """Linux: have the kernel SIGKILL this process when its parent exits (no orphans); a no-op elsewhere."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, int(signal.SIGKILL))  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def worker_env(device: str) -> dict:
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    if device == "cpu":
        # an empty CUDA_VISIBLE_DEVICES makes the launcher's device probe crash; CPU needs no device list
        env.pop("CUDA_VISIBLE_DEVICES", None)
    return env


# how ranks die when ANOTHER rank failed: a collective timeout, or the launcher terminating them
_SECONDARY_FAILURES = ("TIMEOUT", "Termination signal", "SIGTERM")


def first_worker_error(log_dir) -> Optional[str]:
    """'workerlog.N: <error>' for the worker that failed first.

    A pcls error is one line "error: ..." (bad input); otherwise the last line of a traceback. Ranks
    that only died of a collective TIMEOUT (waiting for the failed one) are reported last.
    """
    found = []
    for log in sorted(Path(log_dir).glob("workerlog.*"), key=lambda p: int(p.suffix[1:] or 0)):
        lines = log.read_text(errors="replace").splitlines()
        message = next((ln[len("error: "):] for ln in lines if ln.startswith("error: ")), None)
        if message is None:
            for i, line in enumerate(lines):
                if line.startswith("Traceback (most recent call last)"):
                    tail = [ln for ln in lines[i:] if ln and not ln.startswith(" ")]
                    message = tail[-1] if tail else "traceback"
        if message:
            secondary = any(mark in message for mark in _SECONDARY_FAILURES)
            found.append((secondary, f"{log.name}: {message}"))
    return sorted(found, key=lambda item: item[0])[0][1] if found else None


def record_exit(code: int) -> int:
    """Leave this worker's exit code for the runner in the launcher's log folder; returns `code`."""
    folder, rank = os.environ.get("PADDLE_LOG_DIR"), os.environ.get("PADDLE_LOCAL_RANK")
    if folder and rank is not None:
        from pcls.utils.io import atomic_write_text

        try:
            atomic_write_text(Path(folder) / f"exit.{rank}", str(code))
        except OSError:  # the runner then waits for the launcher's own verdict
            pass
    return code


def _workers_succeeded(launcher_pid: int, log_dir: Path, count: int) -> bool:
    """All `count` local workers left exit code 0 (record_exit) and have exited: the job is done.

    Paddle's launcher looks at its workers once a second and then takes a while to exit; the runner need
    not wait for either. A worker still shutting down, or whose process reports another exit status, is
    left to the launcher."""
    marks = list(log_dir.glob(EXIT_MARKS))
    if len(marks) != count or any(mark.read_text(errors="replace").strip() != "0" for mark in marks):
        return False
    return all(state == "Z" and status == 0 for _, _, state, status in _child_stats(launcher_pid))


def run_launcher(cmd: List[str], log_dir, *, env=None, poll: float = 0.1, timeout: Optional[float] = None,
                 echo=None, local_workers: Optional[int] = None) -> int:
    """Run the launcher in its own process group; kill the group on exit, error or signal.

    Returns 0 on success; raises PclsError (exit 2 when a worker reported bad input, else 1) naming the
    failing worker's error otherwise. `echo(line)` receives rank 0's log lines as they appear.
    `local_workers`: how many workers the launcher starts on this node, when they run worker.py (which
    records each one's exit code): the job is done as soon as all of them exited with 0.
    """
    from pcls.utils.io import record_written

    log_dir = Path(log_dir)
    if log_dir.is_symlink():  # its old logs and marks are removed below: never in a folder a link points to
        raise PclsError(f"{log_dir} is a symbolic link; the job's log folder must be a plain folder of the run "
                        f"(remove the link, or train into a new run)")
    log_dir.mkdir(parents=True, exist_ok=True)
    record_written(log_dir, folder=True)
    for old in [*log_dir.glob("workerlog.*"), *log_dir.glob(EXIT_MARKS)]:  # the launcher appends; one job, one log
        old.unlink()
    proc = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
    workers = set()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM,)}

    def _terminate(signum, frame):
        _kill_all(proc, workers | set(_children(proc.pid)))
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    started, echoed, scanned = time.monotonic(), 0, 0.0
    launcher_out = []
    succeeded = False
    try:
        os.set_blocking(proc.stdout.fileno(), False)
        while proc.poll() is None:
            chunk = proc.stdout.read()
            if chunk:
                launcher_out.append(chunk)
            echoed = _echo_rank0(log_dir, echoed, echo)
            if time.monotonic() - scanned >= 0.5:  # a /proc scan: not on every short poll
                workers.update(_children(proc.pid))
                scanned = time.monotonic()
            if local_workers and _workers_succeeded(proc.pid, log_dir, local_workers):
                succeeded = True
                break
            if timeout is not None and time.monotonic() - started > timeout:
                raise PclsError(f"distributed job exceeded {timeout:.0f} s; killed (logs in {log_dir})", 1)
            try:
                proc.wait(timeout=poll)  # returns as soon as the launcher exits
            except subprocess.TimeoutExpired:
                pass
        rest = proc.stdout.read()
        if rest:
            launcher_out.append(rest)
        _echo_rank0(log_dir, echoed, echo)
    except KeyboardInterrupt:
        workers.update(_children(proc.pid))
        _interrupt_workers(proc, workers)  # ranks save a checkpoint on SIGINT and exit
        _kill_all(proc, workers)
        raise
    except BaseException:
        _kill_all(proc, workers | set(_children(proc.pid)))
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        drop_env_dumps(log_dir)
    _kill_all(proc, workers)  # stragglers (a worker the launcher lost track of); the launcher itself when done
    if proc.returncode == 0 or succeeded:
        return 0
    error = first_worker_error(log_dir)
    if error is None:
        text = b"".join(launcher_out).decode(errors="replace").strip().splitlines()
        error = f"launcher: {text[-1] if text else 'exit code ' + str(proc.returncode)}"
    bad_input = "error: " in _all_logs(log_dir)
    raise PclsError(f"distributed job failed (exit {proc.returncode}) — {error}; logs in {log_dir}",
                    2 if bad_input else 1)


def drop_env_dumps(log_dir) -> list:
    """Delete the launcher's environment dumps (and the workers' exit marks) from `log_dir`; returns the
    files removed."""
    removed = []
    for pattern in (*ENV_DUMPS, EXIT_MARKS):
        for path in Path(log_dir).glob(pattern):
            try:
                path.unlink()
                removed.append(path)
            except OSError:
                pass
    return removed


def _all_logs(log_dir: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in sorted(log_dir.glob("workerlog.*")))


def _echo_rank0(log_dir: Path, offset: int, echo) -> int:
    log = log_dir / "workerlog.0"
    if echo is None or not log.exists():
        return offset
    with open(log, "rb") as fh:
        fh.seek(offset)
        data = fh.read()
    complete = data.rfind(b"\n") + 1
    for line in data[:complete].decode(errors="replace").splitlines():
        echo(line)
    return offset + complete


def _children(pid: int) -> list:
    """(pid, start time) of the direct children of `pid` (Linux /proc); the start time guards against
    a recycled PID when they are signalled later."""
    return [(child, started) for child, started, _, _ in _child_stats(pid)]


def _child_stats(pid: int) -> list:
    """(pid, start time, state, wait status) of the direct children of `pid` from /proc/N/stat; the wait
    status (Linux >= 3.5) means something only for a child that has exited (state Z), else None."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:  # fields after "(comm)": state, ppid, ..., starttime 20th, exit_code 50th
            status = int(fields[49]) if len(fields) > 49 else None
            found.append((int(stat.parent.name), fields[19], fields[0], status))
    return found


def _signal_alive(workers, sig) -> None:
    for pid, started in workers:
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19] != started:
                continue  # that PID now belongs to another process
            os.kill(pid, sig)
        except (OSError, IndexError):
            pass


def _interrupt_workers(proc: subprocess.Popen, workers, grace: float = 30.0) -> None:
    """Ctrl-C for a distributed job: SIGINT the workers (not the launcher) and give them `grace` seconds
    to finish the current update, save and exit."""
    _signal_alive(workers, signal.SIGINT)
    try:
        proc.wait(timeout=grace)
    except (subprocess.TimeoutExpired, KeyboardInterrupt):
        pass


def _kill_all(proc: subprocess.Popen, workers) -> None:
    _signal_alive(workers, signal.SIGKILL)
    _kill_group(proc)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL does not time out in practice
        pass


def _echo(line: str, listeners=()) -> None:
    """One line of rank 0's log: a progress event goes to the parent-side callbacks (`listeners`), never to the
    log as text; launcher chatter is dropped; anything else is logged."""
    event = parse_progress_line(line)
    if event is not None:
        for listener in listeners if event else ():
            listener.on_progress(event)
    elif line.strip() and not _NOISE.match(line):
        log.info("%s", line)


def split_callbacks(callbacks) -> tuple:
    """(the callbacks that stay in this process, the portable specs of those every worker runs): a callback with
    `runs_in_parent` stays, and then rank 0 also runs a ProgressRelay to feed it."""
    from pcls.engine.callbacks import portable

    in_parent = [callback for callback in callbacks if getattr(callback, "runs_in_parent", False)]
    for callback in in_parent:
        if not callable(getattr(callback, "on_progress", None)):
            raise PclsError(f"callback {type(callback).__qualname__} has runs_in_parent = True but no "
                            f"on_progress(event) method to receive rank 0's progress: add one, or drop runs_in_parent")
    sent = [portable(callback) for callback in callbacks if not getattr(callback, "runs_in_parent", False)]
    return in_parent, sent + ([portable(ProgressRelay())] if in_parent else [])


@contextlib.contextmanager
def _relayed_to(listeners):
    """The echo for run_launcher that feeds rank 0's progress events to `listeners`; when the job is over
    (done, failed or interrupted, whether or not rank 0 lived to say so) they get a last `job_end`."""
    try:
        yield functools.partial(_echo, listeners=listeners)
    finally:
        for listener in listeners:
            listener.on_progress({"event": "job_end"})


def world_size(nproc=None, gpus=None, ips=None) -> int:
    return (nproc or (len(gpus.split(",")) if gpus else 1)) * max(1, len(_hosts(ips)))


def _launch_device(options) -> str:
    """The device the workers use: GPUs when listed, else Global.device / --device; 'auto' with nproc means
    N CPU processes (gloo), as launch_command does."""
    if options.gpus:
        return "gpu"
    device = options.device or "auto"
    return "cpu" if device == "auto" else device


def train_distributed(cfg: dict, options, callbacks=()) -> dict:
    """Train `cfg` in `options.nproc` CPU processes or on `options.gpus` (paddle.distributed.launch);
    rank 0's summary. `options`: the run's RunOptions, written unchanged (plus the run directory) into the
    job spec each worker reads; `callbacks` travel as pcls.engine.callbacks.portable specs, except those with
    `runs_in_parent` (the progress bar): they stay here and get rank 0's progress events, relayed through its log.

    Everything that can fail on bad input is checked here, before the launcher starts."""
    import dataclasses

    from pcls.engine.components import preflight
    from pcls.engine.env import require_cuda
    from pcls.engine.run_config import run_directory
    from pcls.utils.io import atomic_write_text

    in_parent, sent = split_callbacks(callbacks)  # a callback that cannot be sent is refused before any write
    device = _launch_device(options)
    if options.gpus:
        import paddle

        if not paddle.is_compiled_with_cuda():  # "--device cpu" would not help: the flag itself asks for GPUs
            raise PclsError("--gpus needs a CUDA build of Paddle and this one has none: drop --gpus (and --ips); "
                            "for several CPU processes use --nproc N")
    else:
        require_cuda(device)
    world = world_size(options.nproc, options.gpus, options.ips)
    preflight(cfg, options, world)
    run_dir = run_directory(cfg, options)  # a resumed run's folder is claimed (locked) here, for all the workers
    worker_options = dataclasses.replace(options, run_dir=str(run_dir), device=device)
    spec_path = run_dir / "launch.json"
    atomic_write_text(spec_path, json.dumps({"config": cfg, "options": worker_options.to_json(), "callbacks": sent},
                                            default=str))
    summary_path = run_dir / "summary.json"
    summary_path.unlink(missing_ok=True)
    worker = Path(__file__).with_name("worker.py")  # run as a script by each rank
    cmd = launch_command(str(worker), [str(spec_path)], log_dir=run_dir / "log",
                         nproc=options.nproc if not options.gpus else None, gpus=options.gpus, ips=options.ips)
    log.info("launching %d processes: %s", world, " ".join(cmd))
    try:
        with _relayed_to(in_parent) as echo:
            run_launcher(cmd, run_dir / "log", env=worker_env(device), echo=echo,
                         local_workers=world if len(_hosts(options.ips)) <= 1 else None)
    except KeyboardInterrupt:
        if not summary_path.is_file():
            raise
        log.warning("interrupted: rank 0 saved its last update in %s; continue with: pcls train --resume %s "
                    "--nproc/--gpus ...", run_dir, run_dir)
    if not summary_path.is_file():
        raise PclsError(f"the distributed job ended without a summary; see the logs in {run_dir / 'log'}", 1)
    return json.loads(summary_path.read_text())
