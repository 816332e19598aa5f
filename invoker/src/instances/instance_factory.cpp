#include "invoker/instances/instance_factory.hpp"

#include <sys/utsname.h>

#include "images/runtimes.hpp"
#include "invoker/instances/instance_network.hpp"
#include "invoker/instances/instance_snapshots.hpp"
#include "snapshots/criu.hpp"
#include "snapshots/criu_environment.hpp"
#include "thaw/error.hpp"

namespace thaw::invoker {

InstanceFactory::InstanceFactory(const HostEnvironment& host, snapshots::SnapshotStore* store,
                                 std::string criu, std::function<void(const std::string&)> log)
    : host_(host), store_(store), log_(std::move(log)) {
  criu_.path = std::move(criu);
  if (!criu_.path.empty()) criu_.version = snapshots::criu_version_of(criu_.path);
  if (snapshots_enabled() && host_.criu_spares > 0) {
    const auto scratch = snapshots::criu_scratch_dir();
    spares_ = std::make_shared<snapshots::CriuSpares>(
        criu_.path, scratch.empty() ? host_.state_dir + "/instances" : scratch, host_.criu_spares,
        [this](const std::string& line) { say(line); });
  }
  utsname u{};
  uname(&u);
  kernel_ = u.release;
  worker_ = std::thread([this] { worker(); });
}

InstanceFactory::~InstanceFactory() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    jobs_.clear();
  }
  wake_.notify_all();
  worker_.join();
}

void InstanceFactory::say(const std::string& line) const {
  if (log_) log_(line);
}

bool snapshot_supported(const std::string& runtime) {
  const auto profile = images::find_runtime(runtime);
  return profile && profile->snapshots;
}

StartedInstance InstanceFactory::start(const FunctionConfig& config, const std::string& code_dir,
                                       const std::string& code_sha256,
                                       std::optional<StartMode> force) {
  StartedInstance out;
  const bool snapshots = snapshots_enabled() && config.snapshot == SnapshotPolicy::Auto &&
                         snapshot_supported(config.runtime);
  const auto digest = function_digest(config, code_sha256, fingerprint_of(host_, config.runtime),
                                      effective_egress(host_, config).text());
  if (snapshots && force != StartMode::Cold && store_->exists(digest) &&
      (force == StartMode::Restore || chooser_.prefer_restore(digest))) {
    bool through_spare = false;
    try {
      auto [dir, manifest] = store_->open(digest, {digest, criu_.version, kernel_});
      out.instance = FunctionInstance::restore(host_, config, code_dir, criu_.path, dir, manifest,
                                               spares_.get(), &through_spare);
      // The next restore of this snapshot finds a criu started ahead.
      out.instance->after_first_answer([spares = std::weak_ptr(spares_), images = dir + "/images",
                                        owner = config.id_mapping().owner(),
                                        options = spare_options(host_, config)] {
        if (auto s = spares.lock()) s->prepare(images, owner, options);
      });
      if (through_spare) ++counters_.restores_with_spare;
      chooser_.record(digest, true, out.instance->restore_phases().total_ms());
      out.init.ok = true;
      out.mode = StartMode::Restore;
      store_->record_restore(digest);
      ++counters_.restores;
      return out;
    } catch (const Error& e) {
      out.fallback_reason = e.what();
      ++counters_.fallbacks;
      // Through a criu started ahead, the failure may be that criu's (it ran
      // for a while, or took its options badly): the snapshot is kept, and the
      // next restore, which starts criu itself, discards it if it fails too.
      if (!through_spare) store_->discard(digest);
      if (spares_) spares_->prune();
      say("snapshot of " + config.name + " not used, starting cold: " + out.fallback_reason);
    }
  } else if (force == StartMode::Restore) {
    out.fallback_reason = "no snapshot of " + config.name;
  }
  out.instance = FunctionInstance::start(host_, config, code_dir, out.init);
  if (snapshots && out.init.ok) chooser_.record(digest, false, out.init.init_ms);
  out.mode = StartMode::Cold;
  ++counters_.cold_starts;
  if (snapshots && out.init.ok) snapshot_in_background(config, code_dir, code_sha256);
  return out;
}

void InstanceFactory::snapshot_in_background(const FunctionConfig& config,
                                             const std::string& code_dir,
                                             const std::string& code_sha256) {
  if (!snapshots_enabled() || config.snapshot != SnapshotPolicy::Auto ||
      !snapshot_supported(config.runtime))
    return;
  const auto digest = function_digest(config, code_sha256, fingerprint_of(host_, config.runtime),
                                      effective_egress(host_, config).text());
  std::shared_ptr<snapshots::SnapshotClaim> claim = store_->try_claim(digest);
  if (!claim) return;  // made already, or being made
  std::lock_guard lock(mutex_);
  if (stopping_) return;
  jobs_.push_back([this, config, code_dir, claim] {
    try {
      // A fresh instance that has seen no invocation: nothing of any request
      // can end up in the snapshot.
      InitOutcome init;
      auto inst = FunctionInstance::start(host_, config, code_dir, init);
      if (!init.ok)
        throw Error("init failed: " + (init.error ? init.error->message : std::string("?")));
      FunctionInstance::checkpoint(std::move(inst), criu_, *claim, *store_);
      ++counters_.snapshots_made;
      say("snapshot of " + config.name + " made (" + claim->digest().substr(0, 12) + ")");
    } catch (const std::exception& e) {
      // Whatever the instance left for the snapshot, it costs the snapshot only.
      ++counters_.snapshot_failures;
      say("snapshot of " + config.name + " failed: " + e.what());
    }
  });
  wake_.notify_one();
}

void InstanceFactory::prune_spares() {
  if (spares_) spares_->prune();
}

void InstanceFactory::wait_idle() {
  std::unique_lock lock(mutex_);
  idle_.wait(lock, [this] { return jobs_.empty() && running_ == 0; });
}

void InstanceFactory::worker() {
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
    if (stopping_) return;
    auto job = std::move(jobs_.front());
    jobs_.pop_front();
    ++running_;
    lock.unlock();
    job();
    lock.lock();
    --running_;
    idle_.notify_all();
  }
}

}  // namespace thaw::invoker
