"""The page at / in a real headless Chromium (Playwright's Python client driving the system's Chromium): choose
an image, see the same top-k the API gives, as bars. Skipped, with the reason, where no browser is installed."""

import os
import shutil
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed (pip install 'pcls[serve]')")
pytest.importorskip("paddle")

from tests.serve.conftest import b64, jpeg_bytes, server_process  # noqa: E402

# The Debian package's real binary (/usr/bin/chromium is a shell wrapper that Playwright cannot drive)
CHROMIUM_CANDIDATES = ("/usr/lib/chromium/chromium", "/usr/bin/chromium", "/usr/bin/chromium-browser")


def chromium_binary():
    found = os.environ.get("PCLS_CHROMIUM") or next((p for p in CHROMIUM_CANDIDATES if Path(p).is_file()), None)
    return found or shutil.which("chromium")


def test_page_shows_the_apis_top_k_for_a_chosen_image(export_dir, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright's Python client is not installed")
    binary = chromium_binary()
    if not binary:
        pytest.skip("no Chromium installed (apt-get install chromium; .ci/run installs it)")
    import httpx

    image = tmp_path / "photo.jpg"
    image.write_bytes(jpeg_bytes(7))
    with server_process(export_dir) as (_, base):
        api = httpx.post(f"{base}/image-classification", json={"image": b64(image.read_bytes())}, timeout=60).json()
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=binary, args=["--no-sandbox"])
            try:
                page = browser.new_page()
                page.goto(f"{base}/")
                page.wait_for_function("document.getElementById('model').textContent.includes('MobileNetV1_x0_25')")
                page.set_input_files("#file", str(image))
                page.wait_for_selector("#results .row", timeout=30_000)
                labels = page.locator("#results .label span:first-child").all_inner_texts()
                scores = page.locator("#results .label span:last-child").all_inner_texts()
                widths = page.locator("#results .bar").evaluate_all("bars => bars.map(b => b.style.width)")
                shown = page.locator("#preview").evaluate("img => img.naturalWidth")
            finally:
                browser.close()
    categories = api["result"]["categories"]
    assert labels == [c["name"] for c in categories]
    assert scores == [f"{c['score']:.4f}" for c in categories]
    assert [float(w.rstrip("%")) for w in widths] == [float(f"{100 * c['score']:.1f}") for c in categories]
    assert shown == 120  # the chosen image itself is shown
