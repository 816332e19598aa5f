#pragma once
// Checkpointing an initialized instance with CRIU and restoring copies of it
// into fresh sandboxes. An instance is checkpointed right after init, before
// any invocation, so no request's data can reach another through a snapshot.

#include <memory>
#include <string>

#include "invoker/function_instance.hpp"
#include "snapshots/criu_spares.hpp"
#include "snapshots/snapshot_store.hpp"

namespace thaw::invoker {

// The digest a snapshot is made for: code, configuration, runtime (with its
// files' fingerprint) and thaw's version.
std::string function_digest(const FunctionConfig& config, const std::string& code_sha256,
                            const std::string& runtime_fingerprint);

class InstanceSnapshots {
 public:
  // Runs the before-snapshot hooks, saves /tmp, dumps with CRIU and publishes
  // under `claim`, with `criu`'s version in the manifest. The instance is
  // consumed (CRIU's dump ends it).
  static void checkpoint(std::unique_ptr<FunctionInstance> instance,
                         const snapshots::CriuInfo& criu, snapshots::SnapshotClaim& claim,
                         snapshots::SnapshotStore& store);

  // A fresh sandbox restored from `snapshot_dir`; runs the after-restore hooks
  // and returns once the runtime says it is ready. Throws Error on failure.
  // `spares` (may be null): a criu started ahead for the snapshot is used if
  // one waits; `through_spare` (may be null) says whether one was, also when
  // the restore then fails.
  static std::unique_ptr<FunctionInstance> restore(
      const HostEnvironment& host, const FunctionConfig& config, const std::string& code_dir,
      const std::string& criu, const std::string& snapshot_dir,
      const snapshots::SnapshotManifest& manifest, snapshots::CriuSpares* spares = nullptr,
      bool* through_spare = nullptr);
};

}  // namespace thaw::invoker
