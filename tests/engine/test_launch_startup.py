"""A launched job's start and end: ranks join rank 0's store as soon as it listens, and the runner returns
as soon as every worker has exited cleanly, without waiting for the launcher's next look."""

import socket
import threading

from pcls.engine.env import store_endpoint, wait_for_store


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_store_endpoint_is_the_one_paddle_connects_to(monkeypatch):
    monkeypatch.delenv("PADDLE_MASTER", raising=False)
    monkeypatch.setenv("PADDLE_TRAINER_ENDPOINTS", "10.0.0.5:6170,10.0.0.6:6171")
    assert store_endpoint() == ("10.0.0.5", 6170)
    monkeypatch.setenv("PADDLE_MASTER", "127.0.0.1:41234")
    assert store_endpoint() == ("127.0.0.1", 41234)
    monkeypatch.delenv("PADDLE_MASTER")
    monkeypatch.delenv("PADDLE_TRAINER_ENDPOINTS")
    assert store_endpoint() is None


def test_wait_for_store_returns_once_rank_0_listens():
    port = _free_port()
    server = socket.socket()
    listening = threading.Event()

    def listen_later():
        listening.wait()
        server.bind(("127.0.0.1", port))
        server.listen()

    thread = threading.Thread(target=listen_later)
    thread.start()
    try:
        assert not wait_for_store(("127.0.0.1", port), timeout=0.05)  # nobody listens yet
        listening.set()
        assert wait_for_store(("127.0.0.1", port), timeout=30)
    finally:
        listening.set()
        thread.join()
        server.close()
