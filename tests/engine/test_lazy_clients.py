"""The run's clients (core/lazy_clients.py): built once, on first use, shared by copies."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from batchimage.core.lazy_clients import LazyClients


class Factory:
    """Builds a new object per call; counts the calls."""

    def __init__(self) -> None:
        self.built: list[object] = []

    def __call__(self) -> object:
        made = object()
        self.built.append(made)
        return made


def test_nothing_is_built_until_asked_then_once() -> None:
    factory = Factory()
    lazy = LazyClients(clients_factory=factory)
    assert factory.built == []
    first = lazy.clients
    assert lazy.clients is first and factory.built == [first]


def test_copies_share_the_clients_built_by_any_of_them() -> None:
    factory = Factory()
    lazy = LazyClients(clients_factory=factory)
    copy = replace(lazy)
    assert copy.clients is lazy.clients
    assert len(factory.built) == 1


def test_threads_asking_at_once_get_one_set() -> None:
    factory = Factory()
    lazy = LazyClients(clients_factory=factory)
    start = threading.Barrier(8)
    got: list[object] = []

    def ask() -> None:
        start.wait()
        got.append(lazy.clients)

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(factory.built) == 1 and got == factory.built * 8


def test_an_offline_run_has_none() -> None:
    with pytest.raises(RuntimeError, match="no Azure clients"):
        _ = LazyClients().clients
