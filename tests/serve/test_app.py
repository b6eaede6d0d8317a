"""Every route of the app on a tiny export, through httpx on the ASGI app with its lifespan run (as uvicorn runs
it): PaddleX's response shape, agreement with the library predictor, batching, limits, errors, the API key."""

import asyncio
import threading

import cv2
import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed (pip install 'pcls[serve]')")
pytest.importorskip("paddle")

from tests.serve.conftest import CLASSES, LABELS, b64, jpeg_bytes, run, served  # noqa: E402


def expected(reference, data: bytes, topk: int):
    row = reference.predict([data])[0]
    return [(i, n, s) for i, n, s in zip(row["class_ids"], row["labels"], row["scores"])][:topk]


def assert_categories(categories, want):
    assert [(c["id"], c["name"]) for c in categories] == [(i, n) for i, n, _ in want]
    np.testing.assert_allclose([c["score"] for c in categories], [s for _, _, s in want], atol=1e-5)


def assert_error(response, status: int, fragment: str):
    assert response.status_code == status, response.text
    body = response.json()
    assert body["errorCode"] == status and body["logId"]
    assert fragment in body["errorMsg"], body["errorMsg"]
    assert "\n" not in body["errorMsg"] and "Traceback" not in body["errorMsg"]


def test_image_classification_answers_as_paddlex_with_the_predictors_scores(export_dir, reference):
    image = jpeg_bytes(0)

    async def main():
        async with served(export_dir) as client:
            default = await client.post("/image-classification", json={"image": b64(image)})
            top3 = await client.post("/image-classification", json={"image": b64(image), "topk": 3})
            old_spelling = await client.post("/image-classification",
                                             json={"image": b64(image), "inferenceParams": {"topk": 2}})
            data_url = await client.post("/image-classification",
                                         json={"image": "data:image/jpeg;base64," + b64(image), "topk": 1})
            return default, top3, old_spelling, data_url

    default, top3, old_spelling, data_url = run(main())
    body = default.json()
    assert default.status_code == 200 and body["errorCode"] == 0 and body["errorMsg"] == "Success" and body["logId"]
    assert body["result"]["image"] is None
    assert_categories(body["result"]["categories"], expected(reference, image, 5))  # the export's topk: 5
    assert_categories(top3.json()["result"]["categories"], expected(reference, image, 3))
    assert_categories(old_spelling.json()["result"]["categories"], expected(reference, image, 2))
    assert_categories(data_url.json()["result"]["categories"], expected(reference, image, 1))


def test_concurrent_callers_are_batched_and_each_gets_its_own_result(export_dir, reference):
    """Eight clients at once with max_batch 8 and a long wait: one model call of eight (a full batch goes at
    once), and each answer is the predictor's answer for that caller's image. A ninth, bad, image shares the
    moment and gets its own 400 without touching the batch."""
    images = [jpeg_bytes(seed) for seed in range(8)]

    async def main():
        async with served(export_dir, max_batch=8, max_wait_ms=20_000) as client:
            calls = [client.post("/image-classification", json={"image": b64(x), "topk": 3}) for x in images]
            calls.append(client.post("/image-classification", json={"image": b64(b"not an image")}))
            responses = await asyncio.gather(*calls)
            metrics = (await client.get("/metrics")).text
            return responses, metrics

    responses, metrics = run(main())
    for image, response in zip(images, responses):
        assert response.status_code == 200, response.text
        assert_categories(response.json()["result"]["categories"], expected(reference, image, 3))
    assert_error(responses[-1], 400, "does not decode as an image")
    assert "pcls_batch_size_count 1.0" in metrics and "pcls_batch_size_sum 8.0" in metrics


def test_predict_uploads_give_the_rows_pcls_predict_prints(export_dir, reference):
    good = [jpeg_bytes(1), jpeg_bytes(2)]

    async def main():
        async with served(export_dir) as client:
            files = [("files", ("a.jpg", good[0], "image/jpeg")), ("files", ("broken.jpg", b"\xff\xd8junk", "image/jpeg")),
                     ("files", ("b.jpg", good[1], "image/jpeg"))]
            mixed = await client.post("/predict", files=files, params={"topk": 2})
            all_bad = await client.post("/predict", files=[("files", ("empty.jpg", b"", "image/jpeg"))])
            return mixed, all_bad

    mixed, all_bad = run(main())
    assert mixed.status_code == 200, mixed.text
    body = mixed.json()
    assert [r["file"] for r in body["results"]] == ["a.jpg", "b.jpg"]
    for image, row in zip(good, body["results"]):
        want = reference.predict([image])[0]
        assert row["class_ids"] == want["class_ids"][:2] and row["labels"] == want["labels"][:2]
        np.testing.assert_allclose(row["scores"], want["scores"][:2], atol=1e-5)
    assert [f["file"] for f in body["failures"]] == ["broken.jpg"] and body["failures"][0]["error"]
    assert_error(all_bad, 400, "empty.jpg")


def test_health_model_metrics_docs_and_page(export_dir):
    async def main():
        import httpx

        from pcls.serve.app import ServeSettings, create_app, load_predictors

        app = create_app(load_predictors(export_dir, runtime="paddle", threads=1), ServeSettings())
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            before = await client.get("/health")  # lifespan not run: not loaded and warmed up
        async with served(export_dir) as client:
            await client.post("/image-classification", json={"image": b64(jpeg_bytes(3))})
            return before, {path: await client.get(path) for path in
                            ("/health", "/model", "/metrics", "/docs", "/openapi.json", "/", "/nosuch")}

    before, got = run(main())
    assert before.status_code == 503 and before.json()["status"] == "loading"
    assert got["/health"].status_code == 200 and got["/health"].json()["status"] == "ready"
    card = got["/model"].json()
    assert card["name"] == "MobileNetV1_x0_25" and card["classes"] == LABELS and card["input_size"] == 64
    assert card["runtime"] == "paddle" and card["precision"] == "fp32"
    metrics = got["/metrics"].text
    assert 'pcls_requests_total{code="200",route="/image-classification"} 1.0' in metrics
    assert "pcls_request_latency_seconds_bucket" in metrics and "pcls_queue_depth 0.0" in metrics
    assert got["/docs"].status_code == 200
    assert {"/image-classification", "/predict", "/health", "/model", "/metrics"} <= set(got["/openapi.json"].json()["paths"])
    assert got["/"].status_code == 200 and 'id="file"' in got["/"].text
    assert_error(got["/nosuch"], 404, "Not Found")


def truncated_png() -> bytes:
    data = cv2.imencode(".png", np.random.default_rng(0).integers(0, 255, (80, 80, 3), dtype=np.uint8))[1].tobytes()
    return data[: len(data) // 2]


@pytest.mark.parametrize("payload, status, fragment", [
    ({"image": "%%% not base64 %%%"}, 400, "not valid base64"),
    ({"image": b64(b"just some text")}, 400, "does not decode as an image"),
    ({"image": ""}, 400, "image is empty"),
    ({"image": b64(truncated_png())}, 400, "does not decode as an image"),
    ({"image": b64(jpeg_bytes(0)[:-300])}, 400, "does not decode as an image"),
    ({"image": "http://169.254.169.254/latest/meta-data"}, 400, "--allow-url"),
    ({"topk": 3}, 422, "image: Field required"),
    ({"image": 42}, 422, "image: Input should be a valid string"),
    ({"image": b64(jpeg_bytes(0)), "topk": 0}, 422, "topk must be between 1 and 10"),
    ({"image": b64(jpeg_bytes(0)), "topk": CLASSES + 1}, 422, "topk must be between 1 and 10"),
    ("{not json", 422, "not valid JSON"),
])
def test_bad_input_is_a_4xx_with_one_clear_message(export_dir, payload, status, fragment):
    async def main():
        async with served(export_dir) as client:
            if isinstance(payload, str):
                return await client.post("/image-classification", content=payload,
                                         headers={"content-type": "application/json"})
            return await client.post("/image-classification", json=payload)

    assert_error(run(main()), status, fragment)


def test_body_and_pixel_limits_give_413(export_dir, monkeypatch):
    big = cv2.imencode(".png", np.zeros((400, 400, 3), np.uint8))[1].tobytes()  # 160,000 pixels, small file
    monkeypatch.setenv("PCLS_MAX_IMAGE_PIXELS", "100000")

    async def main():
        async with served(export_dir, max_body_mb=0.05) as client:
            too_long = await client.post("/image-classification", json={"image": "A" * 60_000})
            too_many_pixels = await client.post("/image-classification", json={"image": b64(big)})
            chunked = await client.post("/image-classification", content=_chunks(60_000),
                                        headers={"content-type": "application/json"})
            return too_long, too_many_pixels, chunked

    too_long, too_many_pixels, chunked = run(main())
    assert_error(too_long, 413, "limit of 0.05 MB")
    assert_error(too_many_pixels, 413, "160,000 pixels is above the limit")
    assert_error(chunked, 413, "limit of 0.05 MB")


async def _chunks(total: int):
    """A body without Content-Length (sent chunked): only counting the bytes read can stop it."""
    yield b'{"image": "'
    for _ in range(total // 10_000):
        yield b"A" * 10_000


def test_full_queue_answers_503_with_retry_after(export_dir):
    """One image inside a held model call, one waiting (max_queue 1): the third is refused at once; releasing
    the model answers the first two."""
    gate, entered = threading.Event(), threading.Event()

    def hold(service):
        infer = service.predictors[0].infer

        def held(batch):
            entered.set()
            gate.wait(60)
            return infer(batch)

        service.queue.runners = [held]

    async def main():
        async with served(export_dir, patch=hold, max_batch=1, max_queue=1, max_wait_ms=0) as client:
            service_call = lambda seed: client.post("/image-classification", json={"image": b64(jpeg_bytes(seed))})  # noqa: E731
            first = asyncio.create_task(service_call(1))
            while not entered.is_set():
                await asyncio.sleep(0.01)
            second = asyncio.create_task(service_call(2))
            metrics = ""
            while "pcls_queue_depth 1.0" not in metrics:
                metrics = (await client.get("/metrics")).text
                await asyncio.sleep(0.01)
            refused = await service_call(3)
            gate.set()
            return refused, await first, await second

    refused, first, second = run(main())
    assert_error(refused, 503, "busy")
    assert refused.headers["retry-after"] == "1"
    assert first.status_code == second.status_code == 200


def test_a_request_over_its_timeout_gets_504(export_dir):
    gate = threading.Event()

    def hold(service):
        infer = service.predictors[0].infer
        service.queue.runners = [lambda batch: (gate.wait(60), infer(batch))[1]]

    async def main():
        async with served(export_dir, patch=hold, timeout_s=0.3, max_wait_ms=0) as client:
            response = await client.post("/image-classification", json={"image": b64(jpeg_bytes(1))})
            gate.set()
            return response

    assert_error(run(main()), 504, "timeout of 0.3 s")


def test_api_key_guards_every_route_but_health_and_the_page(export_dir):
    key = "s3cret-key"

    async def main():
        async with served(export_dir, api_key=key) as client:
            good = {"Authorization": f"Bearer {key}"}
            return {
                "health": await client.get("/health"),
                "page": await client.get("/"),
                "model none": await client.get("/model"),
                "model wrong": await client.get("/model", headers={"Authorization": "Bearer nope"}),
                "model good": await client.get("/model", headers=good),
                "metrics none": await client.get("/metrics"),
                "docs none": await client.get("/openapi.json"),
                "classify none": await client.post("/image-classification", json={"image": b64(jpeg_bytes(1))}),
                "classify good": await client.post("/image-classification", json={"image": b64(jpeg_bytes(1))},
                                                   headers=good),
                "metrics good": await client.get("/metrics", headers=good),
            }

    got = run(main())
    assert got["health"].status_code == 200 and got["page"].status_code == 200
    assert got["model good"].status_code == 200 and got["classify good"].status_code == 200
    for name in ("model none", "metrics none", "docs none", "classify none"):
        assert_error(got[name], 401, "no API key")
        assert got[name].headers["www-authenticate"] == "Bearer"
    assert_error(got["model wrong"], 401, "a wrong API key")
    # refused before any route: counted all the same (the metrics middleware is the outermost)
    assert 'pcls_requests_total{code="401",route="other"} 5.0' in got["metrics good"].text


def test_two_model_instances_answer_side_by_side(export_dir, reference):
    images = [jpeg_bytes(seed) for seed in range(6)]

    async def main():
        async with served(export_dir, workers=2, max_batch=1, max_wait_ms=0) as client:
            card = (await client.get("/model")).json()
            responses = await asyncio.gather(*(client.post("/image-classification", json={"image": b64(x)})
                                               for x in images))
            return card, responses

    card, responses = run(main())
    assert card["workers"] == 2
    for image, response in zip(images, responses):
        assert response.status_code == 200, response.text
        assert_categories(response.json()["result"]["categories"], expected(reference, image, 5))


def test_decoding_runs_on_decoder_threads_while_a_model_call_runs(export_dir, reference):
    """A stand-in model call that waits until another request's image is decoded: it returns only if base64
    decoding, image decoding and pre-processing run beside the model call (on a decoder thread, not the event
    loop's nor the model's), as they must for decoding to overlap the model on a busy server."""
    in_model, decoded_meanwhile = threading.Event(), threading.Event()
    seen = []  # ("model", thread) per model call, ("decode", thread, type of what it was given) per image

    def instrument(service):
        infer, preprocess = service.predictors[0].infer, service.preprocess

        def model_call(batch):
            seen.append(("model", threading.current_thread().name))
            if not in_model.is_set():  # the first call: wait for the second image's decoding
                in_model.set()
                decoded_meanwhile.wait(60)
            return infer(batch)

        def decode(source):
            array = preprocess(source)
            seen.append(("decode", threading.current_thread().name, type(source).__name__))
            if in_model.is_set():
                decoded_meanwhile.set()
            return array

        service.queue.runners = [model_call]
        service.preprocess = decode

    images = [jpeg_bytes(4), jpeg_bytes(5)]

    async def main():
        async with served(export_dir, patch=instrument, max_batch=1, max_wait_ms=0) as client:
            loop_thread = threading.current_thread().name
            post = lambda x: client.post("/image-classification", json={"image": b64(x)})  # noqa: E731
            first = asyncio.create_task(post(images[0]))
            while not in_model.is_set():
                await asyncio.sleep(0.01)
            second = await post(images[1])
            return loop_thread, await first, second

    loop_thread, first, second = run(main())
    assert decoded_meanwhile.is_set()
    for image, response in zip(images, (first, second)):
        assert response.status_code == 200, response.text
        assert_categories(response.json()["result"]["categories"], expected(reference, image, 5))
    decodes = [entry for entry in seen if entry[0] == "decode"]
    models = [entry for entry in seen if entry[0] == "model"]
    assert len(decodes) == 2 and len(models) == 2
    for _, thread, given in decodes:
        assert thread.startswith("pcls-decode") and thread != loop_thread
        assert given == "str"  # the base64 text: decoded there too, not on the event loop
    assert all(thread.startswith("pcls-model") for _, thread in models)
