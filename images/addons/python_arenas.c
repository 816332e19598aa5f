// Python extension for thaw's runtime: puts the interpreter's small-object
// arenas side by side in one reserved area instead of one mapping each.
//
// Why: a restore writes every saved page back into fresh memory, and on this
// kind of host each 4 KiB page costs far more than a 2 MiB one (see the
// README's restore figures). CPython maps each 1 MiB arena on its own, so a
// pandas init leaves ~20 MiB in ~20 separate areas, none of which can hold a
// huge page. Packed into one area, the full ones make dense 2 MiB-aligned
// stretches that the runtime advises huge before the snapshot
// (_thaw_huge_pages.py) and that come back as huge pages.
//
// Arenas are handed out lowest slot first so the used part stays dense; a
// freed arena's memory goes back at once (MADV_DONTNEED), as munmap would give
// it back. When the area is full, or the arena asked for does not fit a slot,
// arenas come from the interpreter's own allocator as before.
//
// CPython calls the arena allocator with the GIL held, which serialises every
// call here.
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <sys/mman.h>

#define SLOT_BYTES ((size_t)1 << 20)
#define HUGE_BYTES ((size_t)2 << 20)
static const unsigned long kMaxAreaMb = 1UL << 20;  // 1 TiB of address space

static struct {
  char* base;
  size_t slots;
  unsigned char* used;
  size_t lowest_free;  // no slot below it is free
  size_t in_area;      // live arenas in the area
  size_t fallbacks;    // arenas handed to CPython's allocator since install
  PyObjectArenaAllocator previous;
} area;

static int in_area(const void* p) {
  const char* c = p;
  return area.base && c >= area.base && c < area.base + area.slots * SLOT_BYTES;
}

static void* arena_alloc(void* ctx, size_t size) {
  (void)ctx;
  if (size <= SLOT_BYTES) {
    for (size_t i = area.lowest_free; i < area.slots; i++) {
      if (area.used[i]) continue;
      area.used[i] = 1;
      area.lowest_free = i + 1;
      area.in_area++;
      return area.base + i * SLOT_BYTES;
    }
  }
  void* p = area.previous.alloc(area.previous.ctx, size);
  if (p) area.fallbacks++;
  return p;
}

static void arena_free(void* ctx, void* p, size_t size) {
  (void)ctx;
  if (!in_area(p)) {
    area.previous.free(area.previous.ctx, p, size);
    return;
  }
  const size_t i = (size_t)((char*)p - area.base) / SLOT_BYTES;
  madvise(p, SLOT_BYTES, MADV_DONTNEED);
  area.used[i] = 0;
  if (i < area.lowest_free) area.lowest_free = i;
  area.in_area--;
}

// install(area_mb): reserves the area (address space only: pages are used as
// arenas touch them) and routes arenas there. False if already installed or
// the reservation was refused; arenas then stay where CPython puts them.
static PyObject* install(PyObject* self, PyObject* args) {
  (void)self;
  unsigned long area_mb;
  if (!PyArg_ParseTuple(args, "k", &area_mb)) return NULL;
  if (area_mb > kMaxAreaMb) {
    PyErr_Format(PyExc_ValueError, "_thaw_arenas: an area of %lu MiB is more than %lu MiB", area_mb,
                 kMaxAreaMb);
    return NULL;
  }
  if (area.base || area_mb == 0) Py_RETURN_FALSE;
  const size_t slots = area_mb;  // one 1 MiB slot per MiB
  unsigned char* used = PyMem_RawCalloc(slots, 1);
  if (!used) return PyErr_NoMemory();
  // One extra 2 MiB so the area can start on a huge-page boundary.
  const size_t reserve = slots * SLOT_BYTES + HUGE_BYTES;
  void* r = mmap(NULL, reserve, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                 -1, 0);
  if (r == MAP_FAILED) {
    PyMem_RawFree(used);
    Py_RETURN_FALSE;
  }
  const uintptr_t start = ((uintptr_t)r + HUGE_BYTES - 1) & ~(uintptr_t)(HUGE_BYTES - 1);
  const uintptr_t end = start + slots * SLOT_BYTES;
  // Give back the unaligned slack at both ends, so the area is one mapping.
  if (start > (uintptr_t)r) munmap(r, start - (uintptr_t)r);
  if ((uintptr_t)r + reserve > end) munmap((void*)end, (uintptr_t)r + reserve - end);
  area.base = (char*)start;
  area.slots = slots;
  area.used = used;
  PyObject_GetArenaAllocator(&area.previous);
  PyObjectArenaAllocator mine = {NULL, arena_alloc, arena_free};
  PyObject_SetArenaAllocator(&mine);
  Py_RETURN_TRUE;
}

// stats(): live arenas in the area, arenas that went elsewhere since install,
// and the area's bounds (0, 0 if none).
static PyObject* stats(PyObject* self, PyObject* unused) {
  (void)self;
  (void)unused;
  const unsigned long start = (unsigned long)(uintptr_t)area.base;
  const unsigned long end = area.base ? start + area.slots * SLOT_BYTES : 0;
  return Py_BuildValue("{s:n,s:n,s:k,s:k}", "in_area", (Py_ssize_t)area.in_area, "fallbacks",
                       (Py_ssize_t)area.fallbacks, "area_start", start, "area_end", end);
}

static PyMethodDef methods[] = {
    {"install", install, METH_VARARGS, "Route arenas into one reserved area of N MiB."},
    {"stats", stats, METH_NOARGS,
     "Arenas in the area, fallbacks since install; the area's bounds."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    "_thaw_arenas",
    "thaw: small-object arenas in one area",
    -1,
    methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC PyInit__thaw_arenas(void) {
  return PyModule_Create(&module);
}
