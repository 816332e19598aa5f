"""Huge-page advice for the heap, given right before the snapshot is taken.

A restore writes every saved page back into fresh memory, and a 4 KiB page
costs far more than its share of a 2 MiB one on this kind of host (a fault, or
a page-table update the hypervisor checks). thaw's CRIU gives a range's
MADV_HUGEPAGE advice back before it refills the range, so advised 2 MiB-aligned
stretches come back as one huge page each.

Only dense stretches are advised: a 2 MiB page is allocated whole, so advising
a sparse one would grow the instance. Density is judged per 2 MiB stretch
(mincore), because one area can be dense in parts: the arena area
(_thaw_arenas) is reserved large and filled from its start. File mappings are
left alone.
"""

_HUGE = 2 << 20
_PAGE = 4096
_MADV_HUGEPAGE = 14
_MIN_DENSITY = 0.75  # share of a stretch's pages that must already be in use


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


def dense_stretches(first, residency):
    """(start, length) runs of 2 MiB stretches from `first` whose share of
    resident pages (mincore's vector, a byte per page) reaches the minimum."""
    per = _HUGE // _PAGE
    runs, run = [], None
    for i in range(0, len(residency) - per + 1, per):
        dense = per - residency.count(0, i, i + per) >= _MIN_DENSITY * per
        if dense and run is None:
            run = i
        elif not dense and run is not None:
            runs.append((first + run * _PAGE, (i - run) * _PAGE))
            run = None
    if run is not None:
        runs.append((first + run * _PAGE, (len(residency) // per * per - run) * _PAGE))
    return runs


def advise():
    import ctypes  # here, not at import: cold starts that never snapshot skip it

    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return
    madvise = libc.madvise
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    mincore = libc.mincore
    mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
    for start, end, resident in _anonymous_areas():
        first = (start + _HUGE - 1) & ~(_HUGE - 1)
        last = end & ~(_HUGE - 1)
        if last <= first or resident < _MIN_DENSITY * _HUGE:
            continue
        vec = ctypes.create_string_buffer((last - first) // _PAGE)
        if mincore(first, last - first, vec) != 0:
            continue
        for run_start, length in dense_stretches(first, vec.raw):
            # Refused where the kernel has no transparent huge pages: harmless.
            madvise(run_start, length, _MADV_HUGEPAGE)
