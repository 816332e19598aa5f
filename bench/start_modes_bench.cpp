// thaw's start modes side by side: cold (sandbox + runtime boot + init),
// restore (CRIU restore of the post-init snapshot) and warm (idle instance
// reused), each from request to response through the invoker library, with
// restore's phases.
//
//   start_modes_bench [RUNS] [SOURCE_DIR] [WARM_MB]
//   (default 50 runs; WARM_MB of warm memory as thawd's default, 256; needs root)
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>

#include "invoker/instances/instance_factory.hpp"
#include "sandbox/cgroup_spares.hpp"
#include "snapshots/criu.hpp"
#include "snapshots/criu_environment.hpp"
#include "stats.hpp"
#include "thaw/error.hpp"

using namespace thaw;
using namespace thaw::invoker;
using bench::Clock;
using bench::ms_since;
constexpr auto pct = bench::percentile;

namespace {

struct Workload {
  std::string label, runtime, handler, example, payload;
  uint32_t memory_mb;
};

}  // namespace

int main(int argc, char** argv) {
  const int runs = argc > 1 ? std::atoi(argv[1]) : 50;
  const std::string source = argc > 2 ? argv[2] : THAW_SOURCE_DIR;
  const size_t warm_mb = argc > 3 ? std::strtoul(argv[3], nullptr, 10) : 256;
  if (geteuid() != 0) {
    std::fprintf(stderr, "start_modes_bench: needs root\n");
    return 2;
  }
  const auto env = snapshots::prepare_criu_environment();  // before any thread
  signal(SIGPIPE, SIG_IGN);
  const auto criu = snapshots::probe_criu();
  if (!criu.usable()) {
    std::fprintf(stderr, "start_modes_bench: CRIU 4.2+ with a passing criu check is needed\n");
    return 2;
  }
  char tmpl[] = "/tmp/thaw-modes-XXXXXX";
  const std::string state = mkdtemp(tmpl);
  auto host = prepare_host_environment(state, THAW_RUNTIMES_DIR, 4);
  host.cgroup_parent = "thaw-bench-" + std::to_string(getpid());
  sandbox::keep_cgroup_spares(host.cgroup_parent, 4);  // as thawd does
  if (warm_mb) host.warm_memory = std::make_shared<snapshots::WarmMemory>(warm_mb << 20);
  snapshots::SnapshotStore store(state + "/snapshots");
  std::vector<Workload> workloads = {
      {"Python hello (stdlib imports)", "python3.11", "handler.handler", "python-hello",
       R"({"name":"b"})", 256},
      {"Python pandas + numpy", "python3.11", "handler.handler", "python-pandas",
       R"({"values":[1,2,3]})", 512},
      {"Node.js hello (http, crypto)", "nodejs20.x", "index.handler", "node-hello",
       R"({"name":"b"})", 256},
  };
  int failures = 0;
  std::map<std::string, std::map<std::string, std::vector<double>>>
      ms;  // workload -> mode -> samples
  std::map<std::string, std::vector<RestorePhases>> phases;
  {
    InstanceFactory factory(host, &store, criu.path);
    std::map<std::string, std::unique_ptr<FunctionInstance>> warm;
    std::map<std::string, std::string> expected;
    for (const auto& w : workloads) {
      FunctionConfig c{"bench", w.runtime, w.handler, w.memory_mb,
                       30,      512,       {},        SnapshotPolicy::Auto};
      factory.snapshot_in_background(c, source + "/images/examples/" + w.example, w.example);
      auto s = factory.start(c, source + "/images/examples/" + w.example, w.example + "-warm",
                             StartMode::Cold);
      auto r = s.instance->invoke({"", w.payload});
      expected[w.label] = r.payload;
      warm[w.label] = std::move(s.instance);
    }
    factory.wait_idle();
    for (int i = -2; i < runs; ++i) {  // 2 warm-ups, discarded; modes interleaved
      for (const auto& w : workloads) {
        FunctionConfig c{"bench", w.runtime, w.handler, w.memory_mb,
                         30,      512,       {},        SnapshotPolicy::Auto};
        const auto code = source + "/images/examples/" + w.example;
        for (const auto mode : {StartMode::Cold, StartMode::Restore, StartMode::Warm}) {
          if (mode == StartMode::Restore && !snapshot_supported(w.runtime)) continue;
          const auto t = Clock::now();
          InvokeResult r;
          RestorePhases p;
          if (mode == StartMode::Warm) {
            r = warm[w.label]->invoke({"", w.payload});
          } else {
            auto s = factory.start(c, code, w.example, mode);
            if (s.mode != mode || !s.init.ok) {
              ++failures;
              std::fprintf(stderr, "%s: wanted %s, got %s (%s)\n", w.label.c_str(), to_string(mode),
                           to_string(s.mode), s.fallback_reason.c_str());
              continue;
            }
            r = s.instance->invoke({"", w.payload});
            p = s.instance->restore_phases();
          }
          const double elapsed = ms_since(t);
          if (r.error || r.payload != expected[w.label]) {
            ++failures;
            continue;
          }
          if (i < 0) continue;
          ms[w.label][to_string(mode)].push_back(elapsed);
          if (mode == StartMode::Restore) phases[w.label].push_back(p);
        }
      }
      std::fprintf(stderr, "\rrun %d/%d", i + 1, runs);
    }
    std::fprintf(stderr, "\n");
  }
  const auto parent = host.cgroup_parent;
  host.namespaces.reset();
  sandbox::remove_cgroup_parent(parent);
  std::filesystem::remove_all(state);

  std::printf(
      "Start modes, request to response through the invoker library, %d runs each, interleaved "
      "(ms)\n",
      runs);
  std::printf("CRIU %s; %s; warm memory %zu MiB\n\n", criu.version.c_str(), env.c_str(), warm_mb);
  std::printf(
      "| workload | cold p50 | cold p99 | restore p50 | restore p99 | warm p50 | warm p99 | "
      "cold/restore |\n");
  std::printf("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
  for (const auto& w : workloads) {
    auto& m = ms[w.label];
    if (m["restore"].empty()) {
      // Runtimes thaw does not snapshot (see snapshot_supported) start cold.
      std::printf("| %s | %.1f | %.1f | n/a | n/a | %.2f | %.2f | n/a |\n", w.label.c_str(),
                  pct(m["cold"], 50), pct(m["cold"], 99), pct(m["warm"], 50), pct(m["warm"], 99));
      continue;
    }
    std::printf("| %s | %.1f | %.1f | %.1f | %.1f | %.2f | %.2f | %.1fx |\n", w.label.c_str(),
                pct(m["cold"], 50), pct(m["cold"], 99), pct(m["restore"], 50),
                pct(m["restore"], 99), pct(m["warm"], 50), pct(m["warm"], 99),
                pct(m["cold"], 50) / std::max(0.001, pct(m["restore"], 50)));
  }
  std::printf(
      "\nRestore phases, p50 (ms)\n\n| workload | prepare (tmp, pipes, cgroup) | criu restore | "
      "resume (hooks to ready) |\n");
  std::printf("| --- | ---: | ---: | ---: |\n");
  for (const auto& w : workloads) {
    if (phases[w.label].empty()) continue;
    std::vector<double> a, b, c;
    for (const auto& p : phases[w.label]) {
      a.push_back(p.prepare_ms);
      b.push_back(p.criu_ms);
      c.push_back(p.resume_ms);
    }
    std::printf("| %s | %.1f | %.1f | %.1f |\n", w.label.c_str(), pct(a, 50), pct(b, 50),
                pct(c, 50));
  }
  std::printf("\nfailures: %d\n", failures);
  return failures == 0 ? 0 : 1;
}
