"""The controller tests' fake media plane keeps the shape of the real worker pool: a drift in the
pool's methods fails here, not in production."""

from __future__ import annotations

import inspect

from callrouter.controller.calls import MediaControl
from callrouter.media.pool import MediaPool
from tests.controller.conftest import FakeMedia


def shape(fn) -> list[tuple[str, object, object]]:
    """Parameter names, kinds and defaults (annotations aside: the pool's are narrower types)."""
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


def public(cls) -> set[str]:
    return {name for name, _ in inspect.getmembers(cls, inspect.isfunction) if not name.startswith("_")}


def test_the_controller_needs_only_send_and_pick_of_the_media_plane():
    assert public(MediaControl) == {"send", "pick"}


def test_pick_has_the_real_pools_signature():
    assert inspect.signature(FakeMedia.pick) == inspect.signature(MediaPool.pick)
    assert inspect.signature(MediaControl.pick) == inspect.signature(MediaPool.pick)


def test_send_to_a_worker_has_the_shape_of_the_pools_dial_and_send():
    """send(worker, command): what the service's adapter does with MediaPool.dial(worker, command)
    for a new leg and MediaPool.send(command) for a leg the pool already routes."""
    assert shape(FakeMedia.send) == shape(MediaControl.send) == shape(MediaPool.dial)
    assert shape(MediaPool.send) == [s for s in shape(MediaPool.dial) if s[0] != "worker"]
    assert inspect.signature(FakeMedia.send).return_annotation == inspect.signature(MediaPool.send).return_annotation
