"""--ray ADDRESS where nothing listens: one line within seconds, not a wait of minutes (#19 item 15)."""

import socket
import time

import pytest

from mitodet.errors import MitodetError
from mitodet.infer.cluster import check_reachable


def test_an_address_nobody_answers_on_is_one_line_quickly():
    with socket.socket() as s:  # a free port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t = time.perf_counter()
    with pytest.raises(MitodetError, match=f"127.0.0.1:{port}: no Ray head answers there"):
        check_reachable(f"127.0.0.1:{port}", timeout=2)
    with pytest.raises(MitodetError, match="no Ray head"):
        check_reachable(f"ray://127.0.0.1:{port}", timeout=2)
    assert time.perf_counter() - t < 5
    check_reachable("auto")  # left to Ray


def test_a_listening_address_passes():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        check_reachable(f"127.0.0.1:{s.getsockname()[1]}", timeout=2)
