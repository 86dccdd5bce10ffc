"""The controller tests' fake media plane keeps the shape of the real worker pool and of the one
MediaControl port calls, callback tasks and alert calls use: a drift in the pool's methods fails
here, not in production."""

from __future__ import annotations

import inspect

from callrouter.media.pool import MediaPool
from callrouter.ports import MediaControl
from tests.controller.conftest import FakeMedia


def shape(fn) -> list[tuple[str, object, object]]:
    """Parameter names, kinds and defaults (annotations aside: the pool's are narrower types)."""
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


def public(cls) -> set[str]:
    return {name for name, _ in inspect.getmembers(cls, inspect.isfunction) if not name.startswith("_")}


def test_the_media_port_is_pick_dial_and_send():
    assert public(MediaControl) == {"pick", "dial", "send"}
    assert public(FakeMedia) - {"commands", "last", "prompts"} == public(MediaControl)


def test_pick_has_the_real_pools_signature():
    assert inspect.signature(FakeMedia.pick) == inspect.signature(MediaPool.pick)
    assert inspect.signature(MediaControl.pick) == inspect.signature(MediaPool.pick)


def test_dial_and_send_have_the_shape_of_the_pools():
    """dial(worker, command) places a new leg on a worker, send(command) goes to the worker already
    holding the command's leg."""
    for name in ("dial", "send"):
        assert shape(getattr(FakeMedia, name)) == shape(getattr(MediaControl, name)) == shape(getattr(MediaPool, name))
        assert (inspect.signature(getattr(FakeMedia, name)).return_annotation
                == inspect.signature(getattr(MediaPool, name)).return_annotation)


def test_the_alert_calls_use_the_same_port():
    from callrouter.controller.alert_session import AlertMedia

    assert AlertMedia is MediaControl
