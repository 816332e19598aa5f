// Cold-path latency: thaw's invoke_cold (sandbox + runtime boot + init + one
// invocation) next to the same runtime started as a bare process with no
// sandbox, doing the same init and the same invocation over the same channel.
//
//   cold_path_bench [RUNS] [SOURCE_DIR]     (default 50 runs; needs root)
#include <fcntl.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>

#include "invoker/instances/function_instance.hpp"
#include "stats.hpp"
#include "thaw/error.hpp"

using namespace thaw;
using namespace thaw::invoker;
using bench::Clock;
constexpr auto pct = bench::percentile;

namespace {

struct Workload {
  std::string label, runtime, handler, example, payload, expect;
  uint32_t memory_mb;
};

// The runtime's bootstrap as a plain child process: same interpreter, same
// handler, same channel protocol, no namespaces, no cgroup, no seccomp.
bool run_bare(const Workload& w, const std::string& source, const std::string& expect) {
  auto pipes = make_channel_pipes();
  FunctionConfig c;
  c.name = "bare";
  c.runtime = w.runtime;
  c.handler = w.handler;
  c.memory_mb = w.memory_mb;
  auto envmap = lambda_environment(c);
  envmap["LAMBDA_TASK_ROOT"] = source + "/images/examples/" + w.example;
  envmap["THAW_CHANNEL_FD"] = "3";
  std::vector<std::string> env;
  for (const auto& [k, v] : envmap) env.push_back(k + "=" + v);
  std::vector<std::string> argv =
      w.runtime == "python3.11"
          ? std::vector<std::string>{"/usr/bin/python3.11", "-u",
                                     source + "/images/runtimes/python3.11/bootstrap.py"}
          : std::vector<std::string>{"/usr/bin/node",
                                     source + "/images/runtimes/nodejs20.x/bootstrap.js"};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, pipes.runtime_in.get(), kRuntimeChannelIn);
  posix_spawn_file_actions_adddup2(&fa, pipes.runtime_out.get(), kRuntimeChannelOut);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  std::vector<char*> a, e;
  for (auto& s : argv) a.push_back(s.data());
  a.push_back(nullptr);
  for (auto& s : env) e.push_back(s.data());
  e.push_back(nullptr);
  pid_t pid;
  if (posix_spawn(&pid, a[0], &fa, nullptr, a.data(), e.data()) != 0) return false;
  posix_spawn_file_actions_destroy(&fa);
  pipes.runtime_in.reset();
  pipes.runtime_out.reset();
  FrameChannel ch(std::move(pipes.thawd_in), std::move(pipes.thawd_out));
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  auto ready = ch.receive(deadline, kMaxResponseBytes, -1, [](std::string_view) {});
  bool ok = ready.status == ReceiveStatus::Frame && ready.frame.header.value("type", "") == "ready";
  if (ok) {
    ch.send({{"type", "invoke"}, {"request_id", "bare"}, {"deadline_ms", 0}, {"function_arn", "x"}},
            w.payload);
    auto got = ch.receive(deadline, kMaxResponseBytes, -1, [](std::string_view) {});
    ok = got.status == ReceiveStatus::Frame && got.frame.body == expect;
  }
  kill(pid, SIGKILL);
  int status;
  waitpid(pid, &status, 0);
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  const int runs = argc > 1 ? std::atoi(argv[1]) : 50;
  const std::string source = argc > 2 ? argv[2] : THAW_SOURCE_DIR;
  if (geteuid() != 0) {
    std::fprintf(stderr, "cold_path_bench: needs root\n");
    return 2;
  }
  char tmpl[] = "/tmp/thaw-coldbench-XXXXXX";
  const std::string state = mkdtemp(tmpl);
  auto host = prepare_host_environment(state, THAW_RUNTIMES_DIR, 4);
  host.cgroup_parent = "thaw-bench-" + std::to_string(getpid());
  std::vector<Workload> workloads = {
      {"Python hello (stdlib imports)", "python3.11", "handler.handler", "python-hello",
       R"({"name":"b"})", R"({"message": "hello b"})", 256},
      {"Python pandas + numpy", "python3.11", "handler.handler", "python-pandas",
       R"({"values":[1,2,3]})", R"({"sum": 6, "mean": 2.0})", 512},
      {"Node.js hello (http, crypto)", "nodejs20.x", "index.handler", "node-hello",
       R"({"name":"b"})", "", 256},
  };
  std::map<std::string, std::vector<double>> cold, init, bare;
  int failures = 0;
  for (int i = -2; i < runs; ++i) {  // 2 warm-ups, discarded
    for (auto& w : workloads) {
      FunctionConfig c;
      c.name = "bench";
      c.runtime = w.runtime;
      c.handler = w.handler;
      c.memory_mb = w.memory_mb;
      c.timeout_s = 30;
      auto t = Clock::now();
      auto r = invoke_cold(host, c, source + "/images/examples/" + w.example, w.payload);
      const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t).count();
      if (w.expect.empty() && !r.error)
        w.expect = r.payload;  // Node's answer, checked from here on
      if (r.error || r.payload != w.expect) {
        ++failures;
        std::fprintf(stderr, "%s: wrong answer: %s\n", w.label.c_str(),
                     r.payload.substr(0, 200).c_str());
      } else if (i >= 0) {
        cold[w.label].push_back(ms);
        init[w.label].push_back(r.init_ms.value_or(0));
      }
      t = Clock::now();
      const bool ok = run_bare(w, source, w.expect);
      const double bare_ms = std::chrono::duration<double, std::milli>(Clock::now() - t).count();
      if (!ok)
        ++failures;
      else if (i >= 0)
        bare[w.label].push_back(bare_ms);
    }
    std::fprintf(stderr, "\rrun %d/%d", i + 1, runs);
  }
  std::fprintf(stderr, "\n");
  const auto parent = host.cgroup_parent;
  host.namespaces.reset();
  sandbox::remove_cgroup_parent(parent);
  std::filesystem::remove_all(state);

  std::printf("Cold path, request to response, %d runs each, interleaved (ms)\n\n", runs);
  std::printf(
      "| workload | thaw cold p50 | thaw cold p99 | of which init p50 | bare process p50 | bare "
      "p99 | thaw/bare |\n");
  std::printf("| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n");
  for (const auto& w : workloads) {
    if (cold[w.label].empty() || bare[w.label].empty()) continue;
    std::printf("| %s | %.1f | %.1f | %.1f | %.1f | %.1f | %.2f |\n", w.label.c_str(),
                pct(cold[w.label], 50), pct(cold[w.label], 99), pct(init[w.label], 50),
                pct(bare[w.label], 50), pct(bare[w.label], 99),
                pct(cold[w.label], 50) / pct(bare[w.label], 50));
  }
  std::printf("\nfailures: %d\n", failures);
  return failures == 0 ? 0 : 1;
}
