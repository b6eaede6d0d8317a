"""`pcls serve`: an exported model behind HTTP (pcls.serve)."""

import os
import signal
from typing import Annotated, Optional

import typer

from pcls.cli.common import console, fail

SERVE_EXTRA_HINT = "pcls serve needs FastAPI and uvicorn: pip install 'pcls[serve]'"


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve(
        model: Annotated[str, typer.Argument(help="An exported model folder, a training run folder or a zoo "
                                             "name (either exported once into the cache on first use).")] = "./inference",
        host: Annotated[str, typer.Option("--host", help="Address to bind; 0.0.0.0 listens on every interface.")]
        = "127.0.0.1",
        port: Annotated[int, typer.Option("--port", min=0, max=65535, help="TCP port.")] = 8080,
        runtime: Annotated[str, typer.Option("--runtime", help="auto, paddle or onnx.")] = "auto",
        device: Annotated[str, typer.Option("--device", help="cpu or gpu.")] = "cpu",
        threads: Annotated[Optional[int], typer.Option("--threads", help="CPU threads per model instance "
                           "(default: the cores shared among --workers).")] = None,
        max_batch: Annotated[int, typer.Option("--max-batch", help="Most images in one model call.")] = 8,
        max_wait_ms: Annotated[float, typer.Option("--max-wait-ms", help="Longest an image waits for others to "
                               "share its model call; 0 batches only what is already waiting.")] = 5.0,
        workers: Annotated[int, typer.Option("--workers", help="Model instances running side by side.")] = 1,
        max_queue: Annotated[int, typer.Option("--max-queue", help="Images that may wait; beyond it the server "
                             "answers 503 with Retry-After.")] = 256,
        timeout: Annotated[float, typer.Option("--timeout", help="Seconds a request may take before a 504.")] = 30.0,
        max_body_mb: Annotated[float, typer.Option("--max-body-mb", help="Largest request body (413 above).")] = 20.0,
        api_key: Annotated[Optional[str], typer.Option("--api-key", envvar="PCLS_API_KEY", help="Require "
                           "'Authorization: Bearer KEY' on every route but /health and the page (env PCLS_API_KEY).")]
        = None,
        allow_url: Annotated[bool, typer.Option("--allow-url", help="Let the 'image' field be an http(s) URL the "
                             "server fetches (off: a server that fetches URLs can be made to reach internal hosts).")]
        = False,
    ):
        """Serve a model over HTTP: PaddleX's /image-classification API, /predict uploads, /metrics, and a page
        to try it at /. Ctrl+C or SIGTERM stops accepting, finishes the requests in flight and exits 0.

        Example: pcls serve inference/ --port 8080 --max-batch 16
        """
        # Paddle's OpenMP threads spin 200 ms after each parallel region by default, taking the cores the
        # decoding and HTTP threads need between model calls (measured: server CPU per image 24 -> 13 ms at 1
        # client, PPLCNet_x1_0); not spinning at all (0) makes every kernel of a call wake its threads anew. 1 ms
        # spans the gaps between one call's kernels, not between calls (measured at 1 client on shared cores,
        # PPLCNet_x1_0: p99 18-30 ms against 0's 26-37; CHANGELOG has the rest). Through the environment, before
        # OpenMP starts, as the process is the server's: it covers every model thread (predict's
        # `openmp_spinning_off` sets its one calling thread at run time, as a library must).
        from pcls.deploy.runtimes import BLOCKTIME_ENV

        os.environ.setdefault(BLOCKTIME_ENV, "1")
        try:
            import uvicorn

            from pcls.serve.app import ServeSettings, create_app, load_predictors
        except ImportError:
            fail(SERVE_EXTRA_HINT)
        settings = ServeSettings(max_batch=max_batch, max_wait_ms=max_wait_ms, max_queue=max_queue,
                                 timeout_s=timeout, max_body_mb=max_body_mb, api_key=api_key,
                                 allow_url=allow_url).validate()
        if host not in ("127.0.0.1", "localhost", "::1") and not api_key:
            console.print(f"note: listening on {host} without --api-key: anyone who reaches it can use the model",
                          style="yellow")
        from pcls.deploy.zoo_export import prepared_model_dir  # a run folder or zoo name: exported once, as predict

        model_dir = prepared_model_dir(model)
        with console.status(f"loading {model_dir}"):
            predictors = load_predictors(model_dir, workers=workers, max_batch=max_batch, runtime=runtime,
                                         device=device, threads=threads)
        app = create_app(predictors, settings)
        # keep-alive above the 60 s idle timeout of common load balancers: a backend that closes an idle
        # connection first races the client's next request on it (the client sees a reset)
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                                timeout_keep_alive=75, timeout_graceful_shutdown=int(timeout) + 5)
        server = uvicorn.Server(config)
        shown_host = f"[{host}]" if ":" in host else host
        console.print(f"serving {model_dir} on http://{shown_host}:{port}/ (API docs at /docs); Ctrl+C stops")
        # uvicorn re-raises the signal it shut down on once it is done; a SIGTERM answered by this no-op then
        # ends the command normally, with exit code 0, after the requests in flight were answered
        previous = signal.signal(signal.SIGTERM, lambda signum, frame: None)
        try:
            server.run()
        except SystemExit:  # uvicorn's answer to an address it cannot bind
            if server.started:
                raise
        finally:
            signal.signal(signal.SIGTERM, previous)
        if not server.started:
            fail(f"could not listen on {host}:{port} (in use, or not an address of this machine); "
                 "choose another --port or --host")
        console.print("stopped")
