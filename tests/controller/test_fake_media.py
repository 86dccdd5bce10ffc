"""The controller tests' fake media plane keeps the shape of the real one: a drift in the worker
pool's methods (or in the adapter the service puts in front of it) fails here, not in production."""

from __future__ import annotations

import inspect

from callrouter.app import PoolMedia
from callrouter.controller.calls import MediaControl
from callrouter.media.pool import MediaPool
from tests.controller.conftest import FakeMedia

# What the controller calls (MediaControl) and the real code that answers it in `callrouter serve`:
# pick() is the pool's own; send(worker, command) is PoolMedia's, over MediaPool.send / MediaPool.dial.
REAL = {"send": PoolMedia.send, "pick": MediaPool.pick}


def controller_methods() -> set[str]:
    return {name for name, _ in inspect.getmembers(MediaControl, inspect.isfunction) if not name.startswith("_")}


def test_the_media_interface_the_controller_uses_is_the_one_checked():
    assert controller_methods() == set(REAL)


def test_the_fake_media_has_the_real_pools_signatures():
    for name, real in REAL.items():
        assert inspect.signature(getattr(FakeMedia, name)) == inspect.signature(real), name
        assert inspect.signature(getattr(MediaControl, name)) == inspect.signature(real), name


def test_the_pool_adapter_forwards_to_methods_the_pool_has():
    """PoolMedia.send calls MediaPool.dial(worker, command) and MediaPool.send(command)."""
    assert list(inspect.signature(MediaPool.dial).parameters) == ["self", "worker", "command"]
    assert list(inspect.signature(MediaPool.send).parameters) == ["self", "command"]
    assert inspect.signature(PoolMedia.pick) == inspect.signature(MediaPool.pick)
