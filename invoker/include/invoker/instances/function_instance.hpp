#pragma once
// One running instance of a function: its sandbox, its channel and its log.
// The cold path is start() (spawn, boot the runtime, wait for init) followed
// by invoke(); a warm invocation is invoke() again on an idle instance.

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "invoker/api/lambda/lambda_limits.hpp"
#include "invoker/functions/function_config.hpp"
#include "invoker/invocation/start_mode.hpp"
#include "invoker/protocol/frame_channel.hpp"
#include "sandbox/cgroup.hpp"
#include "sandbox/host_egress.hpp"
#include "sandbox/instance.hpp"
#include "sandbox/rootfs.hpp"
#include "snapshots/criu.hpp"
#include "snapshots/criu_spares.hpp"
#include "snapshots/snapshot_store.hpp"
#include "snapshots/warm_memory.hpp"
#include "thaw/unique_fd.hpp"
#include "thaw/work_queue.hpp"

namespace thaw::invoker {

constexpr uint64_t kDefaultMaxOutputBytes = 1 << 20;

// What every instance on this host shares.
struct HostEnvironment {
  std::string state_dir;     // instances/ and rootfs/ live here
  std::string runtimes_dir;  // images/runtimes
  // Per runtime directory, a digest of its files (runtime_fingerprint):
  // a snapshot holds the bootstrap in memory, so new files mean new snapshots.
  std::map<std::string, std::string> runtime_fingerprints;
  std::string root_template;  // prepared by prepare_host_environment()
  std::shared_ptr<sandbox::NamespacePool> namespaces;
  std::shared_ptr<snapshots::WarmMemory> warm_memory;  // null: restores take what the kernel has
  // Work a request need not wait for (unmounting thawd's view of a /tmp).
  // Null: done in place.
  std::shared_ptr<thaw::WorkQueue> background;
  std::string cgroup_parent = "thaw";
  std::chrono::milliseconds init_timeout{10000};  // Lambda's limit for the init phase
  // What thawd keeps of an instance's output (stdout and stderr) per
  // invocation, or of its init; the rest is counted and dropped.
  uint64_t max_output_bytes = kDefaultMaxOutputBytes;
  // criu processes started ahead of restores (CriuSpares); 0: each restore
  // starts its own.
  unsigned criu_spares = 4;
  // Links to the host for functions whose policy is not "none"; null: egress
  // is off.
  std::shared_ptr<sandbox::HostEgress> egress;
};

// SHA-256 over the regular files under `dir` (relative names and contents,
// in name order); "" when there is no such directory (provided runtimes:
// their bootstrap is in the code package, which the digest has already).
std::string runtime_fingerprint(const std::string& dir);

// The fingerprint `host` has for `runtime`, "" if none.
std::string fingerprint_of(const HostEnvironment& host, const std::string& runtime);

// Builds the root template and the namespace pool under `state_dir`.
// Namespaces made ahead for a function nobody started for
// `namespace_idle_expiry` are released (thawd passes its keep-alive).
HostEnvironment prepare_host_environment(
    const std::string& state_dir, const std::string& runtimes_dir, size_t namespace_pool_size = 4,
    std::chrono::milliseconds namespace_idle_expiry = std::chrono::minutes(10));

constexpr uint64_t kMaxResponseBytes = kMaxSyncPayloadBytes;
constexpr size_t kLogTailBytes = 4096;  // what X-Amz-Log-Result carries

struct FunctionError {
  std::string type;     // errorType: "ZeroDivisionError", "Runtime.ExitError", ...
  std::string message;  // errorMessage
  std::string body;     // the JSON body Lambda returns for it
};

struct InitOutcome {
  bool ok = false;
  double init_ms = 0;
  std::optional<FunctionError> error;
  std::string log;  // what the runtime printed during init
  uint64_t output_dropped_bytes = 0;
};

struct InvokeRequest {
  std::string request_id;  // generated when empty
  std::string payload;
};

struct InvokeResult {
  std::optional<double> restore_ms;  // restores
  std::string request_id;
  std::string payload;                 // the response, or the error body
  std::optional<FunctionError> error;  // set for function errors (X-Amz-Function-Error: Unhandled)
  double duration_ms = 0;
  uint64_t billed_ms = 0;
  uint64_t max_memory_used_mb = 0;
  uint32_t memory_size_mb = 0;
  std::optional<double> init_ms;     // cold starts
  std::optional<double> sandbox_ms;  // the sandbox's share of init_ms or restore_ms
  StartMode start_mode = StartMode::Warm;
  std::string log;  // START ... END, REPORT of this invocation
  std::string report_line;
  uint64_t output_dropped_bytes = 0;  // over HostEnvironment::max_output_bytes
  // What the instance sent and received over its egress link during the
  // invocation (0 without one).
  uint64_t network_out_bytes = 0;
  uint64_t network_in_bytes = 0;
  std::string log_tail() const;  // the last 4 KB of `log`
  // Where the time went, as an HTTP Server-Timing value: sandbox, init or
  // restore, handler (milliseconds).
  std::string server_timing() const;
};

// Where the time of a restore went, in milliseconds.
struct RestorePhases {
  double prepare_ms = 0;    // scratch /tmp, its files, pipes, cgroup
  double criu_ms = 0;       // criu restore, process start until the runtime's hooks begin
  double resume_ms = 0;     // after-restore hooks, as the runtime timed them
  bool criu_spare = false;  // handed to a criu started ahead (snapshots::CriuSpare)
  double total_ms() const { return prepare_ms + criu_ms + resume_ms; }
};

class FunctionInstance {
 public:
  // Spawns the sandbox and boots the runtime; returns once init finished or
  // failed. A failed init leaves an instance that is not reusable.
  static std::unique_ptr<FunctionInstance> start(const HostEnvironment& host,
                                                 const FunctionConfig& config,
                                                 const std::string& code_dir, InitOutcome& init);
  // A fresh sandbox restored from `snapshot_dir` (instance_snapshots.cpp);
  // runs the after-restore hooks and returns once the runtime says it is
  // ready. Throws Error on failure. `spares` (may be null): a criu started
  // ahead for the snapshot is used if one waits; `through_spare` (may be
  // null) says whether one was, also when the restore then fails.
  static std::unique_ptr<FunctionInstance> restore(
      const HostEnvironment& host, const FunctionConfig& config, const std::string& code_dir,
      const std::string& criu, const std::string& snapshot_dir,
      const snapshots::SnapshotManifest& manifest, snapshots::CriuSpares* spares = nullptr,
      bool* through_spare = nullptr);
  // Runs the before-snapshot hooks, saves /tmp, dumps with CRIU and publishes
  // under `claim`, with `criu`'s version in the manifest. The instance is
  // consumed (CRIU's dump ends it). Checkpointed right after init, before any
  // invocation, no request's data can reach another through a snapshot.
  static void checkpoint(std::unique_ptr<FunctionInstance> instance,
                         const snapshots::CriuInfo& criu, snapshots::SnapshotClaim& claim,
                         snapshots::SnapshotStore& store);
  ~FunctionInstance();

  InvokeResult invoke(const InvokeRequest& request);
  // False after any failure that could have left the runtime in a bad state.
  bool reusable() const { return reusable_; }
  const std::string& id() const { return id_; }
  const sandbox::Instance& sandbox_instance() const { return *sandbox_; }
  const RestorePhases& restore_phases() const { return restore_phases_; }
  // Runs `job` once the first invocation's answer is in (at once if it is).
  // For work a fresh instance sets off that may wait: on two CPUs, anything
  // started beside the first request (criu started ahead, an unmount) took
  // the CPU from its handler or the lock thawd needed to read its answer.
  void after_first_answer(std::function<void()> job);

 private:
  // The instance's ends of its pipes, handed to spawn or to criu.
  struct RuntimeEnds {
    UniqueFd channel_in, channel_out;  // become fds 3 and 4
    UniqueFd log;                      // becomes fds 1 and 2
  };
  // What a cold start and a restore both prepare before a process exists:
  // the id, the instance's /tmp, its mounts.
  FunctionInstance(const HostEnvironment& host, const FunctionConfig& config,
                   const std::string& code_dir, std::string id);
  // The log pipe and the channel: thawd keeps its ends, returns the instance's.
  RuntimeEnds open_pipes();
  // Its link to the host in `netns_fd`, when its policy gives it egress.
  void attach_link(const HostEnvironment& host, int netns_fd);
  // Bytes over its link so far (zeros without one).
  sandbox::LinkCounters link_counters();
  // The cgroup's limits while the runtime boots or is restored: no CPU quota
  // yet (as Lambda boosts init); apply_pending_cpus sets it later.
  sandbox::CgroupLimits start_limits() const;
  // Restore's steps (instance_snapshots.cpp).
  void start_criu(const std::string& criu, const snapshots::RestoreRequest& request,
                  snapshots::CriuSpares* spares, bool* through_spare);
  std::string not_ready_reason(pid_t pid);
  // Tells the restored runtime to run its after-restore hooks.
  void send_restored(const HostEnvironment& host);
  // An invocation's steps: its result with what only the first one reports,
  // the event sent and the answer received within the function's Timeout,
  // the answer read into the result, and the REPORT line and log.
  InvokeResult begin_result(const InvokeRequest& request);
  Received exchange(const std::string& request_id, const std::string& payload, bool* share_applied);
  void read_answer(Received got, InvokeResult& r);
  void write_report(InvokeResult& r);
  FunctionError exit_error(const std::string& request_id);
  // Keeps the instance's output up to the host's cap, and counts the rest.
  void append_log(std::string_view text);
  // A frame that breaks the protocol, or an unexpected one: the runtime is
  // not to be trusted with another invocation.
  FunctionError invalid_response(const std::string& request_id, const std::string& what);
  // Output up to now as the log's text, with a line that says what was
  // dropped; starts the count again.
  std::string take_log();
  // A restored instance runs before CRIU has exited, and becomes our child
  // only when it has: reap CRIU (if `wait`, or once it exited) before waiting
  // for the instance, and remove its work directory.
  void settle_restore(bool wait);
  // The function's CPU share, withheld during init or restore (as Lambda
  // boosts init), applied once the first invocation's frame is written: the
  // runtime starts on it meanwhile instead of waiting for the cgroup write.
  // False (and logged) if the cgroup refused it.
  bool apply_pending_cpus();
  void run_guarded(const std::function<void()>& job);

  std::string id_;
  FunctionConfig config_;
  std::unique_ptr<sandbox::ScratchMount> tmp_;
  sandbox::EgressPolicy egress_;               // the policy in force for it
  std::unique_ptr<sandbox::EgressLink> link_;  // null: no egress
  std::unique_ptr<sandbox::Instance> sandbox_;
  std::unique_ptr<snapshots::RestoreRun> restore_run_;  // until settle_restore
  std::unique_ptr<FrameChannel> channel_;
  UniqueFd log_;
  std::string pending_log_;
  uint64_t max_output_bytes_ = kDefaultMaxOutputBytes;
  uint64_t dropped_output_bytes_ = 0;
  bool reusable_ = false;
  std::optional<double> pending_cpus_;  // see apply_pending_cpus
  bool answered_ = false;
  std::vector<std::function<void()>> after_first_answer_;
  StartMode started_as_ = StartMode::Cold;  // what the first invocation reports
  std::optional<double> first_init_ms_;
  std::optional<double> first_restore_ms_;
  std::optional<double> first_sandbox_ms_;
  RestorePhases restore_phases_;
  std::string code_dir_;
  std::string instance_dir_;
  sandbox::MountPlan mounts_;
};

// The cold path as one call: start an instance, invoke it once, tear it down.
InvokeResult invoke_cold(const HostEnvironment& host, const FunctionConfig& config,
                         const std::string& code_dir, const std::string& payload);

std::string new_request_id();

}  // namespace thaw::invoker
