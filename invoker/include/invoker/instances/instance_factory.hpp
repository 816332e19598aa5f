#pragma once
// Where instances come from: a restore of the function's snapshot when one
// exists, otherwise a cold start. Snapshots are made in the background (after a
// cold start, or when asked), one per function digest, and no caller waits for
// a dump. A restore that fails for any reason falls back to a cold start,
// discards the snapshot and says why.

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "invoker/instances/function_instance.hpp"
#include "invoker/invocation/start_mode_chooser.hpp"
#include "snapshots/criu_spares.hpp"
#include "snapshots/snapshot_store.hpp"

namespace thaw::invoker {

struct FactoryCounters {
  std::atomic<uint64_t> restores{0};             // snapshot hits
  std::atomic<uint64_t> restores_with_spare{0};  // of those, handed to a criu started ahead
  std::atomic<uint64_t> cold_starts{0};          // misses
  std::atomic<uint64_t> fallbacks{0};            // restore failed, served cold
  std::atomic<uint64_t> snapshots_made{0};
  std::atomic<uint64_t> snapshot_failures{0};
};

struct StartedInstance {
  std::unique_ptr<FunctionInstance> instance;
  InitOutcome init;
  StartMode mode = StartMode::Cold;  // Cold or Restore
  std::string fallback_reason;       // why a restore was not used, when it was tried
  // How thaw_instance_starts_total counts it: "fallback" for a cold start
  // after a restore that failed, else the mode's name.
  const char* start_label() const { return fallback_reason.empty() ? to_string(mode) : "fallback"; }
};

// Whether thaw snapshots functions of this runtime (others always start cold).
bool snapshot_supported(const std::string& runtime);

class InstanceFactory {
 public:
  // `store` null or `criu` empty: snapshots are off, every start is cold.
  InstanceFactory(const HostEnvironment& host, snapshots::SnapshotStore* store, std::string criu,
                  std::function<void(const std::string&)> log = {});
  ~InstanceFactory();
  InstanceFactory(const InstanceFactory&) = delete;
  InstanceFactory& operator=(const InstanceFactory&) = delete;

  // `force`: none (best: a restore when a snapshot exists, unless this
  // function's restores have proved slower than its cold starts, see
  // StartModeChooser), Cold or Restore (for benchmarks; Restore without a
  // snapshot falls back to cold like any failed restore). Warm is not a way
  // to start and counts as none.
  StartedInstance start(const FunctionConfig& config, const std::string& code_dir,
                        const std::string& code_sha256,
                        std::optional<StartMode> force = std::nullopt);

  // Queues a snapshot of the function unless one exists or is being made.
  void snapshot_in_background(const FunctionConfig& config, const std::string& code_dir,
                              const std::string& code_sha256);
  // Blocks until no background snapshot is queued or running.
  void wait_idle();

  bool snapshots_enabled() const { return store_ != nullptr && !criu_.path.empty(); }
  // Ends the criu processes started ahead for snapshots that are gone.
  void prune_spares();
  const FactoryCounters& counters() const { return counters_; }

 private:
  void worker();
  void say(const std::string& line) const;

  const HostEnvironment& host_;
  snapshots::SnapshotStore* store_;
  snapshots::CriuInfo criu_;  // path and version; no path: snapshots off
  std::string kernel_;
  std::function<void(const std::string&)> log_;
  FactoryCounters counters_;
  // Shared with instances, which ask for a spare after their first answer.
  std::shared_ptr<snapshots::CriuSpares> spares_;  // null when snapshots are off
  StartModeChooser chooser_;
  std::mutex mutex_;
  std::condition_variable wake_, idle_;
  std::deque<std::function<void()>> jobs_;
  int running_ = 0;
  bool stopping_ = false;
  std::thread worker_;
};

}  // namespace thaw::invoker
