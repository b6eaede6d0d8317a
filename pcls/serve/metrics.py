"""`GET /metrics`: Prometheus text from the `prometheus_client` library, one registry per app (so two apps in one
process, as in the tests, never share counts)."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import CONTENT_TYPE_LATEST  # noqa: F401  (the /metrics response's media type)

LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class ServeMetrics:
    def __init__(self, max_batch: int, queue_depth):
        self.registry = CollectorRegistry()
        self.requests = Counter("pcls_requests", "HTTP requests answered, by route and status code",
                                ["route", "code"], registry=self.registry)
        self.errors = Counter("pcls_errors", "HTTP requests answered with an error (4xx/5xx), by status code",
                              ["code"], registry=self.registry)
        self.latency = Histogram("pcls_request_latency_seconds", "Request latency, by route", ["route"],
                                 buckets=LATENCY_BUCKETS_S, registry=self.registry)
        sizes = sorted({1, 2, 4, 8, 16, 32, 64, max_batch} - {s for s in (2, 4, 8, 16, 32, 64) if s > max_batch})
        self.batch_size = Histogram("pcls_batch_size", "Images per model call", buckets=sizes,
                                    registry=self.registry)
        self.queue_depth = Gauge("pcls_queue_depth", "Images waiting for the model", registry=self.registry)
        self.queue_depth.set_function(queue_depth)

    def observe(self, route: str, code: int, seconds: float) -> None:
        self.requests.labels(route, str(code)).inc()
        if code >= 400:
            self.errors.labels(str(code)).inc()
        self.latency.labels(route).observe(seconds)

    def text(self) -> bytes:
        return generate_latest(self.registry)


class ObserveRequests:
    """ASGI middleware counting each answered request by route and status, with its latency. Plain ASGI, not
    Starlette's BaseHTTPMiddleware, which runs every request in an extra task group and memory stream on the
    event loop's one thread."""

    def __init__(self, app, metrics: ServeMetrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start, status = time.perf_counter(), 500

        async def observed_send(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:  # the router has put the matched route into the scope by then
            route = getattr(scope.get("route"), "path", "other")
            self.metrics.observe(route, status, time.perf_counter() - start)
