// Spawning a sandboxed /bin/true from request to reaped exit, next to
// `unshare` and bubblewrap doing the same, interleaved in one run.
//
//   sandbox_spawn_bench [RUNS]        (default 1000; needs root)
//
// thaw's figure includes everything an instance costs: a namespace pair from
// the pool, the cgroup (created and removed), the /tmp tmpfs (mounted and
// unmounted), the clone, the mount plan, pivot_root, seccomp and exec.
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "sandbox/instance.hpp"
#include "sandbox/rootfs.hpp"
#include "stats.hpp"
#include "thaw/error.hpp"

extern char** environ;
using namespace thaw;
using bench::Clock;
using bench::ms_since;

namespace {

struct Series {
  std::string name;
  std::vector<double> ms;
  double pct(double p) const { return bench::percentile(ms, p); }
};

bool run_command(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid;
  if (posix_spawn(&pid, args[0], nullptr, nullptr, args.data(), environ) != 0) return false;
  int status;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  const int runs = argc > 1 ? std::atoi(argv[1]) : 1000;
  if (geteuid() != 0) {
    std::fprintf(stderr, "sandbox_spawn_bench: needs root\n");
    return 2;
  }
  char tmpl[] = "/tmp/thaw-bench-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  std::filesystem::permissions(dir, std::filesystem::perms(0755));
  const auto root = sandbox::prepare_root_template(dir + "/root");
  std::filesystem::create_directories(dir + "/code");
  sandbox::IdMapping mapping;
  sandbox::NamespacePool pool(8);
  pool.wait_ready(mapping, 8);
  const auto filter = sandbox::compiled(sandbox::default_profile());
  const std::string parent = "thaw-bench-" + std::to_string(getpid());

  Series thaw{"thaw spawn (pooled netns)", {}},
      unshare_s{"unshare --fork --pid --mount --net --ipc --uts", {}},
      bwrap{"bwrap --unshare-all", {}};
  Series cgroup_step{"  step: cgroup create", {}}, clone_step{"  step: shim + clone", {}},
      setup_step{"  step: child setup to exec", {}}, ns_step{"  step: pool acquire", {}},
      tmp_step{"  step: /tmp tmpfs mount", {}},
      teardown{"  after exit: cgroup removal (off the request path)", {}};
  const bool have_bwrap = access("/usr/bin/bwrap", X_OK) == 0;
  int failures = 0;

  for (int i = -20; i < runs; ++i) {  // 20 warm-ups, discarded
    const bool keep = i >= 0;
    // thaw
    {
      const auto t = Clock::now();
      const auto t_ns = Clock::now();
      auto ns = pool.acquire(mapping);
      const double ns_ms = ms_since(t_ns);
      const auto t_tmp = Clock::now();
      sandbox::ScratchMount tmp(dir + "/tmp-" + std::to_string(i + 100), 512ull << 20,
                                mapping.to_host(0), mapping.to_host(0));
      const double tmp_ms = ms_since(t_tmp);
      sandbox::SandboxSpec spec;
      spec.name = "b" + std::to_string(i + 100);
      spec.cgroup_parent = parent;
      spec.argv = {"/bin/true"};
      spec.root_dir = root;
      spec.mounts = sandbox::standard_mount_plan({dir + "/code", "", tmp.dir(), "", {}});
      spec.seccomp = filter;
      try {
        auto inst = sandbox::spawn(spec, std::move(ns));
        if (inst->wait().code != 0) ++failures;
        if (keep) {
          thaw.ms.push_back(ms_since(t));
          cgroup_step.ms.push_back(inst->timings().cgroup_us / 1000);
          clone_step.ms.push_back(inst->timings().clone_us / 1000);
          setup_step.ms.push_back(inst->timings().child_setup_us / 1000);
          ns_step.ms.push_back(ns_ms);
          tmp_step.ms.push_back(tmp_ms);
        }
        const auto t_down = Clock::now();
        inst.reset();  // cgroup removal: thawd does this off the request path
        if (keep) teardown.ms.push_back(ms_since(t_down));
      } catch (const Error& e) {
        std::fprintf(stderr, "thaw spawn failed: %s\n", e.what());
        ++failures;
      }
    }
    // unshare
    {
      auto t = Clock::now();
      if (!run_command({"/usr/bin/unshare", "--fork", "--pid", "--mount", "--net", "--ipc", "--uts",
                        "/bin/true"}))
        ++failures;
      if (keep) unshare_s.ms.push_back(ms_since(t));
    }
    if (have_bwrap) {
      auto t = Clock::now();
      if (!run_command({"/usr/bin/bwrap", "--unshare-all", "--ro-bind", "/usr",      "/usr",
                        "--symlink",      "usr/bin",       "/bin",      "--symlink", "usr/lib",
                        "/lib",           "--symlink",     "usr/lib64", "/lib64",    "--proc",
                        "/proc",          "--dev",         "/dev",      "--tmpfs",   "/tmp",
                        "/bin/true"}))
        ++failures;
      if (keep) bwrap.ms.push_back(ms_since(t));
    }
  }
  sandbox::remove_cgroup_parent(parent);
  std::filesystem::remove_all(dir);

  std::printf(
      "Spawn of a sandboxed /bin/true, request to reaped exit, %d runs each, interleaved (ms)\n\n",
      runs);
  std::printf(
      "| contender | p50 | p90 | p99 | min | max |\n| --- | ---: | ---: | ---: | ---: | ---: |\n");
  std::vector<const Series*> all = {&thaw,       &ns_step,    &tmp_step, &cgroup_step,
                                    &clone_step, &setup_step, &teardown, &unshare_s};
  if (have_bwrap) all.push_back(&bwrap);
  for (const auto* s : all) {
    if (s->ms.empty()) continue;
    std::printf("| %s | %.3f | %.3f | %.3f | %.3f | %.3f |\n", s->name.c_str(), s->pct(50),
                s->pct(90), s->pct(99), s->pct(0), s->pct(100));
  }
  std::printf("\nfailures: %d\n", failures);
  return failures == 0 ? 0 : 1;
}
