// The Python runtime's memory layout helpers, run in Debian's python3.11 as
// instances run them: the arena area (images/addons/python_arenas.c) and the
// huge-page advice given before a snapshot (_thaw_huge_pages.py).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

using nlohmann::json;

namespace {

constexpr const char* kPython = "/usr/bin/python3.11";

// Runs a script with the runtime's directory on the path; its last stdout line
// is JSON.
json run_python(const std::string& script) {
  const std::string command = std::string("PYTHONPATH=") + THAW_RUNTIMES_DIR + "/python3.11 " +
                              kPython + " -c '" + script + "' 2>&1";
  FILE* out = popen(command.c_str(), "r");
  if (!out) return json{{"error", "popen failed"}};
  std::string text;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, out)) text.append(buf, n);
  const int status = pclose(out);
  const auto last = text.find_last_of('\n', text.size() >= 2 ? text.size() - 2 : 0);
  const std::string line = last == std::string::npos ? text : text.substr(last + 1);
  if (status != 0 || !json::accept(line)) return json{{"error", text}};
  return json::parse(line);
}

}  // namespace

class PythonRuntime : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access(kPython, X_OK) != 0) GTEST_SKIP() << kPython << " is not installed";
  }
};

// Arenas go to the area, lowest slot first; a full area sends the rest to
// CPython's own allocator, and a freed arena's memory is given back.
TEST_F(PythonRuntime, ArenasShareOneAreaSpillOverWhenFullAndFreedOnesAreGivenBack) {
  const auto r = run_python(R"(
import json, _thaw_arenas
try:
    _thaw_arenas.install(1 << 40)
    oversized = "accepted"
except ValueError as e:
    oversized = str(e)
first, second = _thaw_arenas.install(4), _thaw_arenas.install(4)
def area_kb():
    s = _thaw_arenas.stats()
    kb, inside = 0, False
    for line in open("/proc/self/smaps"):
        f = line.split()
        if not f[0].endswith(":"):
            a, b = (int(x, 16) for x in f[0].split("-"))
            inside = a >= s["area_start"] and b <= s["area_end"]
        elif f[0] == "Anonymous:" and inside:
            kb += int(f[1])
    return kb
words = [str(i) * 3 for i in range(300000)]
full = _thaw_arenas.stats()
full_kb = area_kb()
intact = all(w == str(i) * 3 for i, w in enumerate(words))
del words
import gc; gc.collect()
after = _thaw_arenas.stats()
print(json.dumps({"first": first, "second": second, "full": full, "full_kb": full_kb,
                  "after": after, "after_kb": area_kb(), "intact": intact,
                  "oversized": oversized}))
)");
  ASSERT_FALSE(r.contains("error")) << r.dump();
  EXPECT_NE(r["oversized"].get<std::string>().find("more than"), std::string::npos)
      << r["oversized"];
  EXPECT_TRUE(r["first"].get<bool>());
  EXPECT_FALSE(r["second"].get<bool>()) << "a second install must not replace the first";
  EXPECT_EQ(r["full"]["area_end"].get<uint64_t>() - r["full"]["area_start"].get<uint64_t>(),
            4u << 20);
  EXPECT_EQ(r["full"]["area_start"].get<uint64_t>() % (2u << 20), 0u) << "huge-page aligned";
  EXPECT_EQ(r["full"]["in_area"], 4) << "every slot used before spilling over";
  EXPECT_GT(r["full"]["fallbacks"].get<int>(), 0);
  EXPECT_GT(r["full_kb"].get<int>(), 3 * 1024);
  EXPECT_TRUE(r["intact"].get<bool>());
  EXPECT_LT(r["after"]["in_area"].get<int>(), 4);
  EXPECT_LT(r["after_kb"].get<int>(), r["full_kb"].get<int>()) << "freed arenas keep their memory";
}

// Density is judged per 2 MiB stretch: in one area, the full stretches are
// advised huge and the sparse and untouched ones are not.
TEST_F(PythonRuntime, OnlyDenseStretchesAreAdvisedHugeBeforeASnapshot) {
  const auto r = run_python(R"(
import ctypes, json, mmap, _thaw_huge_pages
HUGE = 2 << 20
m = mmap.mmap(-1, 10 * HUGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
base = ctypes.addressof(ctypes.c_char.from_buffer(m))
first = (base + HUGE - 1) & ~(HUGE - 1)
off = first - base
for i in range(0, 4 * HUGE, 4096):
    m[off + i] = 1
for i in range(0, HUGE // 4, 4096):
    m[off + 4 * HUGE + i] = 1
_thaw_huge_pages.advise()
def advised(addr):
    inside = False
    for line in open("/proc/self/smaps"):
        f = line.split()
        if not f[0].endswith(":"):
            a, b = (int(x, 16) for x in f[0].split("-"))
            inside = a <= addr < b
        elif f[0] == "VmFlags:" and inside:
            return "hg" in f[1:]
print(json.dumps({"dense": [advised(first), advised(first + 3 * HUGE)],
                  "sparse": advised(first + 4 * HUGE), "untouched": advised(first + 6 * HUGE)}))
)");
  ASSERT_FALSE(r.contains("error")) << r.dump();
  EXPECT_EQ(r["dense"], json({true, true}));
  EXPECT_FALSE(r["sparse"].get<bool>()) << "a quarter-used stretch would grow by 1.5 MiB";
  EXPECT_FALSE(r["untouched"].get<bool>());
}
