#include "invoker/functions/id_pool.hpp"

#include <fstream>
#include <limits>
#include <sstream>
#include <vector>

#include "sandbox/namespaces.hpp"
#include "thaw/error.hpp"

namespace thaw::invoker {

namespace {

constexpr uint64_t kRange = sandbox::kIdRangeSize;
// (uid_t)-1 means "no change" to the kernel and may not be mapped.
constexpr uint64_t kLastValidId = std::numeric_limits<uint32_t>::max() - 1;

uint64_t end_of(const IdPoolConfig& pool) {  // one past the last id
  return uint64_t{pool.first} + uint64_t{pool.ranges} * kRange;
}

std::string span(uint64_t first, uint64_t end) {
  return std::to_string(first) + "-" + std::to_string(end - 1);
}

std::vector<std::string> fields_of(const std::string& line) {
  std::vector<std::string> out;
  std::stringstream in(line);
  std::string f;
  while (std::getline(in, f, ':')) out.push_back(f);
  return out;
}

bool whole_number(const std::string& s, uint64_t& out) {
  if (s.empty() || s.size() > 10 || s.find_first_not_of("0123456789") != std::string::npos)
    return false;
  out = std::stoull(s);
  return true;
}

// passwd and group: name:x:ID:...; subuid and subgid: name:FIRST:COUNT.
void check_file(const IdPoolConfig& pool, const std::string& path, bool ranges) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    const auto f = fields_of(line);
    uint64_t first = 0, count = 1;
    if (ranges) {
      if (f.size() < 3 || !whole_number(f[1], first) || !whole_number(f[2], count)) continue;
    } else if (f.size() < 3 || !whole_number(f[2], first)) {
      continue;
    }
    if (first < end_of(pool) && first + count > pool.first)
      throw Error("the host id pool " + span(pool.first, end_of(pool)) + " overlaps " + path +
                  "'s " + (ranges ? "range " + span(first, first + count) : "id " + f[2]) + " of " +
                  f[0] + " (choose another with --id-pool-first)");
  }
}

}  // namespace

void validate(const IdPoolConfig& pool) {
  if (pool.ranges == 0) throw Error("--id-pool-ranges: must be at least 1");
  if (pool.first < kRange)
    throw Error("--id-pool-first: must be at least " + std::to_string(kRange) +
                " (below are the host's own users), got " + std::to_string(pool.first));
  if (end_of(pool) - 1 > kLastValidId)
    throw Error("--id-pool-ranges: " + std::to_string(pool.ranges) + " ranges of " +
                std::to_string(kRange) + " ids from " + std::to_string(pool.first) +
                " run past the last host id, " + std::to_string(kLastValidId));
}

void check_pool_is_unused(const IdPoolConfig& pool, const std::string& etc) {
  check_file(pool, etc + "/passwd", false);
  check_file(pool, etc + "/group", false);
  check_file(pool, etc + "/subuid", true);
  check_file(pool, etc + "/subgid", true);
}

bool is_range_base(const IdPoolConfig& pool, uint32_t base) {
  return base >= pool.first && base < end_of(pool) && (base - pool.first) % kRange == 0;
}

std::optional<PickedRange> pick_range(const IdPoolConfig& pool, uint32_t cursor,
                                      const std::set<uint32_t>& bases_in_use) {
  for (uint64_t k = 0; k < pool.ranges; ++k) {
    const auto index = static_cast<uint32_t>((uint64_t{cursor} + k) % pool.ranges);
    const auto base = static_cast<uint32_t>(pool.first + uint64_t{index} * kRange);
    if (!bases_in_use.count(base)) return PickedRange{base, index};
  }
  return std::nullopt;
}

}  // namespace thaw::invoker
