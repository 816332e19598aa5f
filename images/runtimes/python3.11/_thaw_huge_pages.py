"""Huge-page advice for the heap, given right before the snapshot is taken.

A restore writes every saved page back into fresh memory, and each 4 KiB page
costs a fault; on a paravirtualized host that is ~10 us, most of a restore.
thaw's CRIU gives a range's MADV_HUGEPAGE advice back before it refills the
range, so advised 2 MiB-aligned stretches come back as one huge page each.

Only dense anonymous areas are advised: a 2 MiB page is allocated whole, so a
sparse area would grow. File mappings are left alone.
"""

_HUGE = 2 << 20
_MADV_HUGEPAGE = 14
_MIN_DENSITY = 0.75  # share of the area's pages that must already be in use


def _anonymous_areas():
    """(start, end, resident bytes) of each private writable anonymous area."""
    areas, current = [], None
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            fields = line.split()
            if not fields[0].endswith(":"):
                current = None
                start, end = (int(x, 16) for x in fields[0].split("-"))
                name = fields[5] if len(fields) > 5 else ""
                if fields[1].startswith("rw") and fields[1].endswith("p") and name in ("", "[heap]"):
                    current = [start, end, 0]
                    areas.append(current)
            elif fields[0] == "Anonymous:" and current is not None:
                current[2] = int(fields[1]) * 1024
    return areas


def advise():
    import ctypes  # here, not at import: cold starts that never snapshot skip it

    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return
    madvise = libc.madvise
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    for start, end, resident in _anonymous_areas():
        first = (start + _HUGE - 1) & ~(_HUGE - 1)
        last = end & ~(_HUGE - 1)
        if last > first and resident >= _MIN_DENSITY * (end - start):
            # Refused where the kernel has no transparent huge pages: harmless.
            madvise(first, last - first, _MADV_HUGEPAGE)
