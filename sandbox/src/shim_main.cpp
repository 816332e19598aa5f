// thaw-sandbox-shim: the first step of spawning an instance, in a process of
// its own. spawn() starts it with posix_spawn (vfork and exec, no copy of the
// caller's memory) and hands it the ChildPlan in a memfd; it joins the
// namespaces and clones the instance with CLONE_PARENT (child.hpp).
//
// A fork of thawd did this before: its page tables, and the copy-on-write
// faults thawd took afterwards, grew with thawd's memory, which grows with
// its live instances.
//     thaw-sandbox-shim PLAN_FD
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "plan_codec.hpp"

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  const int fd = atoi(argv[1]);
  std::string bytes;
  char buf[16384];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) bytes.append(buf, static_cast<size_t>(n));
  close(fd);
  static thaw::sandbox::detail::DecodedPlan plan;
  if (n < 0 || !thaw::sandbox::detail::decode_plan(bytes, plan)) return 3;
  thaw::sandbox::detail::run_shim(plan.plan);
}
