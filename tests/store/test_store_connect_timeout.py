"""A PostgreSQL that accepts the connection and never answers fails it in seconds: without a
connect timeout the thread that asked (the recorder, a lease renewal) would hang until TCP gives up,
which on an established connection is never."""

import socket
import threading

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from callrouter.store.db import PG_CONNECT_TIMEOUT_S, make_engine
from callrouter.store.testing import postgres_url


@pytest.fixture
def silent_server():
    """A TCP server on loopback that accepts connections and never sends a byte."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    server.close()


def connect_in_thread(url: str) -> tuple[threading.Thread, list]:
    outcome: list = []

    def connect() -> None:
        engine = make_engine(url)
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            outcome.append("connected")
        except OperationalError as exc:
            outcome.append(exc)
        finally:
            engine.dispose()

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    return thread, outcome


def test_a_silent_postgresql_fails_the_connection_instead_of_hanging(silent_server):
    thread, outcome = connect_in_thread(f"postgresql+psycopg://u@127.0.0.1:{silent_server}/db")
    thread.join(timeout=PG_CONNECT_TIMEOUT_S * 6)
    assert not thread.is_alive(), "the connection attempt still hangs"
    assert len(outcome) == 1 and isinstance(outcome[0], OperationalError)
    assert "timeout" in str(outcome[0]).lower()



@pytest.mark.parametrize("query, expected", [
    ("", {"connect_timeout": "5", "tcp_user_timeout": "30000"}),
    ("?connect_timeout=3&tcp_user_timeout=10000", {"connect_timeout": "3", "tcp_user_timeout": "10000"}),
])
def test_a_real_connection_carries_the_timeouts_and_the_urls_own_win(query, expected):
    """On the real PostgreSQL: the defaults reach libpq (a network cut drops the connection after
    30 s of unacknowledged data instead of TCP's ~15 minutes), and a URL's own values are kept."""
    engine = make_engine(f"{postgres_url()}{query}")
    try:
        with engine.connect() as conn:
            parameters = conn.connection.dbapi_connection.info.get_parameters()
    finally:
        engine.dispose()
    assert {key: parameters.get(key) for key in expected} == expected
