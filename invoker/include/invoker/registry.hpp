#pragma once
// The functions deployed on this host, kept in SQLite under the state
// directory (WAL mode), so a restart or a kill -9 of thawd loses none.

#include <optional>
#include <string>
#include <vector>

#include "invoker/function_config.hpp"

struct sqlite3;

namespace thaw::invoker {

struct FunctionRecord {
  FunctionConfig config;
  std::string code_sha256;  // hex, the code store's key
  uint64_t code_size = 0;   // bytes of the package as uploaded
  std::string role;
  std::string last_modified;  // Lambda's format: 2026-11-22T08:00:00.000+0000
};

class Registry {
 public:
  explicit Registry(const std::string& path);
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  void put(const FunctionRecord& record);  // insert or replace
  std::optional<FunctionRecord> get(const std::string& name) const;
  std::vector<FunctionRecord> list() const;  // by name
  bool remove(const std::string& name);

 private:
  sqlite3* db_ = nullptr;
};

std::string lambda_timestamp_now();

}  // namespace thaw::invoker
