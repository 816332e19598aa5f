#pragma once
// The deploy half: which functions exist, with what code and configuration.
// The registry (thaw.db) is the record, the code store holds the packages,
// and an in-memory catalogue, loaded once at start-up and written through on
// every change, is what invocations read. One change at a time; a reader
// never waits for a deploy's unpacking. What instances do about a change is
// the listener's business (FunctionService), not the catalogue's.

#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <vector>

#include "images/code_package.hpp"
#include "invoker/api/lambda/function_requests.hpp"
#include "invoker/functions/id_pool.hpp"
#include "invoker/functions/registry.hpp"
#include "invoker/instances/function_instance.hpp"

namespace thaw::invoker {

// One page of ListFunctions.
struct FunctionPage {
  std::vector<FunctionRecord> functions;
  std::string next_marker;  // empty on the last page
};

// A deployed function with the digest its instances and snapshot are made for.
struct Deployed {
  FunctionRecord record;
  std::string digest;
};

class FunctionCatalog {
 public:
  // Told, with the deploy lock held, that a function's code or configuration
  // changed (`deployed`) or that it is gone (`removed`).
  struct Listener {
    std::function<void(const Deployed&)> deployed;
    std::function<void(const std::string& name)> removed;
  };
  // A change of a record, applied under the deploy lock to the current one.
  using Edit = std::function<FunctionRecord(FunctionRecord)>;

  // Opens thaw.db and code/ under the host's state directory and loads every
  // function; a record whose host ids are not from `pool` gets a range of it.
  FunctionCatalog(const HostEnvironment& host, IdPoolConfig pool);
  void listen(Listener listener) { listener_ = std::move(listener); }

  // Each throws a Failure: Conflict, NotFound, InvalidParameter (a bad
  // package), StorageFull, or Internal (no host id range left).
  FunctionRecord create(CreateRequest request);
  FunctionRecord update_code(const std::string& name, const std::string& zip);
  FunctionRecord update_configuration(const std::string& name, const Edit& edit);
  // Settings that change no instance (event invoke config, concurrency):
  // saved, no listener called. `edit` may throw to refuse.
  FunctionRecord update_settings(const std::string& name, const Edit& edit);
  void remove(const std::string& name);

  std::optional<Deployed> lookup(const std::string& name) const;
  FunctionRecord get(const std::string& name) const;  // a NotFound Failure when absent
  FunctionPage list(const std::string& marker, size_t max_items) const;
  std::vector<Deployed> all() const;
  // `name` when it is deployed, else the one function deployed (the emulator's
  // single-function view); a NotFound Failure otherwise.
  std::string only_function(const std::string& name) const;
  // The unpacked package, when the store has it.
  std::optional<std::string> code_dir(const std::string& code_sha256) const;
  // Removes packages no function uses; call when no instance runs from one.
  int discard_unused_code();

  Registry& registry() { return registry_; }

 private:
  // Gives the record a host id range nobody else has; deploy_mutex_ held.
  void assign_id_range(FunctionRecord& record);
  // Writes the record to the registry, then remember()s it.
  Deployed save(const FunctionRecord& record);
  // Serves the record from the in-memory catalogue, with its digest.
  Deployed remember(const FunctionRecord& record);
  FunctionRecord store_code(FunctionRecord record, const std::string& zip);
  void deployed(const Deployed& d) const;

  const HostEnvironment& host_;
  IdPoolConfig pool_;
  images::CodeStore code_;
  Registry registry_;
  Listener listener_;
  std::mutex deploy_mutex_;  // one change of the set of functions at a time
  mutable std::shared_mutex catalog_mutex_;
  std::map<std::string, Deployed> catalog_;
};

}  // namespace thaw::invoker
