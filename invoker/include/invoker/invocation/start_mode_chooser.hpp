#pragma once
// Whether restoring a function's snapshot pays. A restore is not always faster
// than booting the runtime: a Node.js hello world boots in ~70 ms here and
// takes ~85 to restore (CRIU re-creates V8's threads and mappings), while
// pandas restores three times faster than it boots. Per function digest, the
// chooser keeps running averages of the time to a ready instance each way;
// once both are known and restores are the slower, automatic starts go cold,
// with a restore every kRecheckEvery starts so that a change is noticed.

#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

namespace thaw::invoker {

class StartModeChooser {
 public:
  static constexpr int kRestoresToJudge = 2;  // one restore can be an outlier
  static constexpr uint64_t kRecheckEvery = 10;

  // A start of the function took `ms` to a ready instance.
  void record(const std::string& digest, bool restored, double ms);
  // For an automatic start with a snapshot at hand: restore it?
  bool prefer_restore(const std::string& digest);

 private:
  struct Averages {
    double cold_ms = 0, restore_ms = 0;
    int cold_n = 0, restore_n = 0;
    uint64_t cold_choices = 0;
  };
  std::mutex mutex_;
  std::unordered_map<std::string, Averages> by_digest_;
};

}  // namespace thaw::invoker
