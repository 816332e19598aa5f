"""Snapshot hooks for functions, in the spirit of Lambda SnapStart's runtime hooks.

    import thaw

    @thaw.register_before_snapshot
    def close_connections(): ...

    @thaw.register_after_restore
    def reconnect(): ...

Before-snapshot hooks run once, after init, right before thaw checkpoints the
instance. After-restore hooks run in every copy restored from that snapshot,
before it serves its first invocation.
"""

_before_snapshot = []
_after_restore = []


def register_before_snapshot(fn):
    _before_snapshot.append(fn)
    return fn


def register_after_restore(fn):
    _after_restore.append(fn)
    return fn


def _run_before_snapshot():
    for fn in _before_snapshot:
        fn()


def _run_after_restore():
    # Every restored copy starts from the same memory: anything seeded at init
    # would repeat across copies. Reseed from the kernel before user hooks run.
    import random
    import sys
    random.seed()
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed()
    for fn in _after_restore:
        fn()
