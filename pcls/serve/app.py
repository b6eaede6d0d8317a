"""The FastAPI app: PaddleX 3's image-classification API, multipart `/predict`, health, model card, metrics, and
the page at `/`. Every image is decoded and pre-processed on its own (a bad one is that request's 4xx, never its
batch's), then waits in the batching queue (`pcls.serve.batching`) for one model call shared with its neighbours.

    app = create_app(load_predictors("inference/"), ServeSettings(max_batch=16))
    uvicorn.run(app, host="127.0.0.1", port=8080)
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np
from fastapi import FastAPI, File, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from pcls.data.decode import DecodeError, ImageTooLarge
from pcls.deploy.postprocess import build_postprocess, scored_classes
from pcls.errors import PclsError
from pcls.serve.batching import BatchQueue, QueueFull
from pcls.serve.errors import ServeError, error_body, success_body
from pcls.serve.limits import DEFAULT_MAX_BODY_MB, ApiKey, BodyLimit
from pcls.serve.metrics import CONTENT_TYPE_LATEST, ObserveRequests, ServeMetrics

log = logging.getLogger(__name__)
PAGE_FILE = Path(__file__).with_name("page.html")
OPEN_PATHS = ("/health", "/")  # the page is static HTML holding no model data; the calls it makes carry the key


@dataclass
class ServeSettings:
    max_batch: int = 8
    max_wait_ms: float = 5.0
    max_queue: int = 256  # images waiting; beyond it 503 + Retry-After
    timeout_s: float = 30.0  # per request, from arrival to answer
    max_body_mb: float = DEFAULT_MAX_BODY_MB
    api_key: Optional[str] = None
    allow_url: bool = False
    url_timeout_s: float = 10.0
    retry_after_s: int = 1

    def validate(self) -> "ServeSettings":
        checks = [("--max-batch", self.max_batch, 1), ("--max-queue", self.max_queue, 1),
                  ("--max-wait-ms", self.max_wait_ms, 0), ("--timeout", self.timeout_s, 0.001),
                  ("--max-body-mb", self.max_body_mb, 0.001)]
        for flag, value, low in checks:
            if value < low:
                raise PclsError(f"{flag} must be >= {low}, got {value}")
        return self


def load_predictors(model_dir, workers: int = 1, max_batch: int = 8, **predictor_options) -> list:
    """`workers` model instances of one export, each with its share of the CPU threads."""
    from pcls.deploy.predictor import Predictor
    from pcls.deploy.runtimes import cpu_threads

    if workers < 1:
        raise PclsError(f"--workers must be >= 1, got {workers}")
    if predictor_options.get("threads") is None:
        predictor_options["threads"] = max(1, cpu_threads() // workers)
    return [Predictor(model_dir, batch_size=max_batch, **predictor_options) for _ in range(workers)]


class ClassifyRequest(BaseModel):
    """PaddleX 3's image-classification request (`inferenceParams.topk` as its older clients send it too)."""

    model_config = ConfigDict(extra="ignore")
    image: str = Field(description="The image file's bytes in base64, or an http(s) URL when the server "
                                   "runs with --allow-url")
    topk: Optional[int] = Field(None, description="How many classes to return (default: the export's topk)")
    inferenceParams: Optional[dict] = Field(None, description="PaddleX's older spelling: {\"topk\": N}")


class Service:
    """The model side of the app: predictors, the batching queue, per-top-k post-processing, the state flags."""

    def __init__(self, predictors: Sequence, settings: ServeSettings):
        self.predictors = list(predictors)
        self.settings = settings
        first = self.predictors[0]
        self.spec, self.labels = first.spec, first.labels
        self.default_topk = first.topk
        self.class_num = int(first.class_num or len(self.labels or []) or 0) or None
        max_batch = min(settings.max_batch, first.fixed_batch or settings.max_batch)
        self.metrics = ServeMetrics(max_batch, lambda: self.queue.depth)
        self.queue = BatchQueue([p.infer for p in self.predictors], max_batch, settings.max_wait_ms / 1000,
                                settings.max_queue, on_batch=self.metrics.batch_size.observe)
        self.ready = False
        self._post = {}
        # decoding shares the cores with the model: as many decoders as the predictor uses, not one per request
        self.decoders = ThreadPoolExecutor(max_workers=first.workers, thread_name_prefix="pcls-decode")

    def warm_up(self) -> None:
        """One call per predictor at the largest batch, so the first request pays no allocation cost."""
        height, width = self.predictors[0].input_hw
        for predictor in self.predictors:
            predictor.infer(np.zeros((self.queue.max_batch, 3, height, width), np.float32))

    def topk(self, requested: Optional[int]) -> int:
        if requested is None:
            return self.default_topk
        if requested < 1 or (self.class_num and requested > self.class_num):
            upper = f" and {self.class_num} (the model's classes)" if self.class_num else ""
            raise ServeError(422, f"topk must be between 1{upper}, got {requested}")
        return requested

    def postprocess(self, topk: int):
        if topk not in self._post:
            self._post[topk] = build_postprocess(self.spec["PostProcess"], self.labels, topk)
        return self._post[topk]

    def preprocess(self, source) -> np.ndarray:
        """Encoded bytes, or a request's base64 text, -> the model input; runs on a decoder thread, so base64,
        decoding and resizing (OpenCV and numpy release the GIL) overlap the model call and the event loop."""
        data = base64_bytes(source) if isinstance(source, str) else source
        return self.predictors[0].preprocess_one(data)

    async def classify(self, source, topk: int) -> dict:
        """{"class_ids", "scores", "labels"} for one image (encoded bytes, or base64 text as `image_source`
        gives it), through the batching queue."""
        try:
            with self.queue.arriving():
                array = await asyncio.get_running_loop().run_in_executor(self.decoders, self.preprocess, source)
        except ImageTooLarge as err:
            raise ServeError(413, f"image is too large: {err}") from None
        except (DecodeError, PclsError) as err:
            raise ServeError(400, f"image {err}") from None
        try:
            row = await self.queue.submit(array)
        except QueueFull:
            raise ServeError(503, f"the server is busy ({self.queue.max_queue} images are waiting); retry in "
                             f"{self.settings.retry_after_s} s", {"Retry-After": str(self.settings.retry_after_s)})
        return self.postprocess(topk)(row[None])[0]

    async def within_timeout(self, work):
        try:
            return await asyncio.wait_for(work, self.settings.timeout_s)
        except asyncio.TimeoutError:
            raise ServeError(504, f"no answer within the server's timeout of {self.settings.timeout_s:g} s "
                             "(pcls serve --timeout)") from None

    def card(self) -> dict:
        first = self.predictors[0]
        return {"name": self.spec["Global"].get("model_name"), "classes": self.labels or self.class_num,
                "class_num": self.class_num, "input_size": first.input_size,  # int, or [h, w]
                "runtime": first.runtime,
                "device": first.settings.device, "precision": first.settings.precision,
                "topk": self.default_topk, "max_batch": self.queue.max_batch,
                "max_wait_ms": self.settings.max_wait_ms, "workers": len(self.predictors)}  # no server paths


async def image_source(image: str, settings: ServeSettings):
    """The request's `image`: its base64 text (a `data:` URL prefix is dropped; decoded on a decoder thread by
    `base64_bytes`), or with --allow-url the bytes an http(s) URL answers."""
    text = image.strip()
    if "://" in text[:16]:
        if not settings.allow_url:
            raise ServeError(400, "image is a URL, and this server does not fetch URLs (a server that does can be "
                                  "made to reach internal hosts); send the image as base64, or start the server "
                                  "with --allow-url")
        return await fetch_url(text, settings)
    if text.startswith("data:") and "," in text:
        text = text.split(",", 1)[1]
    if not text:
        raise ServeError(400, "image is empty: send the image file's bytes in base64")
    return text


def base64_bytes(text: str) -> bytes:
    """The image bytes of a request's base64 text; `Service.preprocess` calls it on a decoder thread."""
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ServeError(400, "image is not valid base64 (nor an http(s) URL)") from None
    if not data:
        raise ServeError(400, "image is empty: send the image file's bytes in base64")
    return data


async def fetch_url(url: str, settings: ServeSettings) -> bytes:
    """An http(s) URL's body, at most the body limit, within url_timeout_s; no redirects (each hop could lead
    somewhere the first URL did not say)."""
    import httpx

    if not url.lower().startswith(("http://", "https://")):
        raise ServeError(400, f"image URL {url[:80]!r}: only http and https URLs are fetched")
    limit = int(settings.max_body_mb * 1e6)
    try:
        async with httpx.AsyncClient(timeout=settings.url_timeout_s, follow_redirects=False) as client:
            async with client.stream("GET", url) as response:
                if response.status_code != 200:
                    raise ServeError(400, f"image URL {url[:80]} answered HTTP {response.status_code}")
                chunks, size = [], 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > limit:
                        raise ServeError(413, f"image URL {url[:80]} is larger than {settings.max_body_mb:g} MB")
                    chunks.append(chunk)
    except httpx.HTTPError as err:
        raise ServeError(400, f"image URL {url[:80]} could not be fetched ({type(err).__name__})") from None
    return b"".join(chunks)


def _validation_message(err: RequestValidationError) -> str:
    first = err.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ()) if part != "body") or "request body"
    if first.get("type") == "json_invalid":
        return "the request body is not valid JSON; send {\"image\": \"<base64>\", \"topk\": 5}"
    return f"{where}: {first.get('msg', 'invalid')}"


def create_app(predictors: Sequence, settings: Optional[ServeSettings] = None) -> FastAPI:
    settings = (settings or ServeSettings()).validate()
    service = Service(predictors, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await run_in_threadpool(service.warm_up)
        service.queue.start()
        service.ready = True
        log.info("model %s ready", service.card()["name"])
        yield
        service.ready = False
        await service.queue.stop()  # uvicorn has waited for the requests in flight; this empties the queue
        service.decoders.shutdown(wait=True)

    app = FastAPI(title="pcls serve", lifespan=lifespan,
                  description="Image classification with an exported pcls / PaddleClas model.")
    app.state.service = service

    @app.exception_handler(ServeError)
    async def _serve_error(request: Request, err: ServeError):
        return JSONResponse(error_body(err.status, err.message), status_code=err.status, headers=err.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, err: RequestValidationError):
        return JSONResponse(error_body(422, _validation_message(err)), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, err: StarletteHTTPException):
        return JSONResponse(error_body(err.status_code, str(err.detail)), status_code=err.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, err: Exception):
        body = error_body(500, "internal error")
        log.exception("logId %s: %s %s failed", body["logId"], request.method, request.url.path)
        body["errorMsg"] = f"internal error; the server log has it under logId {body['logId']}"
        return JSONResponse(body, status_code=500)

    @app.post("/image-classification", summary="Classify one image (PaddleX 3's request and response)")
    async def classify(body: ClassifyRequest):
        topk = service.topk(body.topk if body.topk is not None else (body.inferenceParams or {}).get("topk"))

        async def work():
            result = await service.classify(await image_source(body.image, settings), topk)
            # PaddleX's fields, then what the model's post-process adds (PULC attributes: `attributes`, `output`)
            extra = {k: v for k, v in result.items() if k not in ("class_ids", "labels", "scores")}
            return {"categories": [{"id": i, "name": n, "score": s}
                                   for i, n, s in scored_classes(result, service.labels)], "image": None, **extra}

        return JSONResponse(success_body(await service.within_timeout(work())))

    @app.post("/predict", summary="Classify uploaded images (multipart); rows as `pcls predict --json` prints")
    async def predict(files: List[UploadFile] = File(..., description="One or more image files"),
                      topk: Optional[int] = Query(None, description="How many classes per image")):
        topk = service.topk(topk)

        async def one(upload: UploadFile):
            try:
                data = await upload.read()
                if not data:
                    raise ServeError(400, "image is empty")
                return {"file": upload.filename, **await service.classify(data, topk)}
            except ServeError as err:
                if err.status in (503, 504):  # the server's state, not this image's: the whole request says so
                    raise
                return {"file": upload.filename, "error": err.message.removeprefix("image ")}

        rows = await service.within_timeout(asyncio.gather(*(one(f) for f in files)))
        results = [r for r in rows if "error" not in r]
        failures = [r for r in rows if "error" in r]
        body = {"model": service.card()["name"], "results": results, "failures": failures}
        if not results:
            first = failures[0]
            return JSONResponse({**error_body(400, f"no image could be read; {first['file']}: {first['error']}"),
                                 **body}, status_code=400)
        return body

    @app.get("/health", summary="200 once the model is loaded and warmed up, else 503")
    async def health():
        if not service.ready:
            return JSONResponse({"status": "loading"}, status_code=503)
        return {"status": "ready"}

    @app.get("/model", summary="The model: name, classes, input size, runtime, precision")
    async def model():
        return service.card()

    @app.get("/metrics", summary="Prometheus metrics")
    async def metrics():
        return Response(service.metrics.text(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page():
        return HTMLResponse(PAGE_FILE.read_text(encoding="utf-8"))

    app.add_middleware(BodyLimit, max_bytes=int(settings.max_body_mb * 1e6))
    app.add_middleware(ApiKey, key=settings.api_key, open_paths=OPEN_PATHS)

    # added last, so outermost: refused requests (401, 413) are counted too
    app.add_middleware(ObserveRequests, metrics=service.metrics)

    return app
