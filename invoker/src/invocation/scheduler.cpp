#include "invoker/invocation/scheduler.hpp"

#include <algorithm>

#include "invoker/functions/failure.hpp"

namespace thaw::invoker {

namespace {

using SystemClock = std::chrono::system_clock;

[[noreturn]] void throttle(const char* reason, const std::string& message) {
  throw Failure(FailureKind::Throttled, message, reason);
}

}  // namespace

Lease::Lease(Lease&& other) noexcept
    : scheduler_(std::exchange(other.scheduler_, nullptr)),
      function_(std::move(other.function_)),
      digest_(std::move(other.digest_)),
      memory_mb_(other.memory_mb_),
      instance_(std::move(other.instance_)),
      start_mode_(other.start_mode_),
      started_(other.started_),
      warm_(other.warm_),
      memory_reserved_(other.memory_reserved_),
      unreserved_slot_(other.unreserved_slot_) {}

Lease::~Lease() {
  if (scheduler_) scheduler_->give_back(*this);
}

void Lease::attach(std::unique_ptr<FunctionInstance> instance, StartMode start_mode) {
  if (!instance) return;
  instance_ = std::move(instance);
  start_mode_ = start_mode;
  started_ = SystemClock::now();
  std::lock_guard lock(scheduler_->mutex_);
  scheduler_->busy_[instance_->id()] = {instance_->id(), function_, "Busy",  start_mode_,
                                        memory_mb_,      started_,  started_};
}

Scheduler::Scheduler(SchedulerLimits limits) : limits_(limits) {
  reaper_ = std::thread([this] { reaper(); });
}

Scheduler::~Scheduler() {
  std::vector<Idle> doomed;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    for (auto& [name, pool] : idle_)
      for (auto& i : pool) doomed.push_back(std::move(i));
    idle_.clear();
  }
  wake_.notify_all();
  reaper_.join();
}

void Scheduler::on_instance_end(std::function<void(const std::string&)> callback) {
  std::lock_guard lock(mutex_);
  instance_end_ = std::move(callback);
}

void Scheduler::evict_locked(std::vector<Idle>& pool, const std::function<bool(const Idle&)>& evict,
                             std::vector<Idle>& doomed) {
  for (auto i = pool.begin(); i != pool.end();) {
    if (!evict(*i)) {
      ++i;
      continue;
    }
    memory_mb_ -= i->view.memory_mb;
    doomed.push_back(std::move(*i));
    i = pool.erase(i);
  }
}

void Scheduler::end_all(std::vector<Idle>& doomed) {
  for (auto& d : doomed) {
    d.instance.reset();
    if (instance_end_) instance_end_(d.view.function);
  }
}

bool Scheduler::admit_locked(const std::string& function) {
  if (const auto r = reserved_.find(function); r != reserved_.end()) {
    if (in_flight_[function] >= r->second)
      throttle(kReservedLimitExceeded,
               "Rate Exceeded. " + function + " has a reserved concurrency of " +
                   std::to_string(r->second) + " and that many invocations are running");
    return false;
  }
  if (in_flight_unreserved_ >= limits_.max_concurrency - reserved_total_)
    throttle(kConcurrentLimitExceeded,
             "Rate Exceeded. The host's unreserved concurrency (" +
                 std::to_string(limits_.max_concurrency - reserved_total_) + ") is in use");
  return true;
}

std::optional<Scheduler::Idle> Scheduler::take_idle_locked(const std::string& function,
                                                           const std::string& digest) {
  auto& pool = idle_[function];
  // The most recently used one: the others age towards the keep-alive.
  for (auto it = pool.rbegin(); it != pool.rend(); ++it) {
    if (it->digest != digest) continue;
    Idle taken = std::move(*it);
    pool.erase(std::next(it).base());
    taken.view.state = "Busy";
    busy_[taken.view.id] = taken.view;
    return taken;
  }
  return std::nullopt;
}

void Scheduler::reserve_memory_locked(const std::string& function, uint32_t memory_mb,
                                      std::vector<Idle>& doomed) {
  const auto budget = limits_.memory_budget_mb;
  if (budget && memory_mb_ + memory_mb > budget) {
    // Busy instances hold what idle ones do not: when evicting every idle
    // one would not make room, the request is refused and none is evicted
    // (they would die for a request that never runs).
    uint64_t idle_mb = 0;
    for (const auto& [name, p] : idle_)
      for (const auto& i : p) idle_mb += i.view.memory_mb;
    if (memory_mb_ - idle_mb + memory_mb > budget)
      throttle(kMemoryBudgetExceeded,
               "Rate Exceeded. A new instance of " + function + " needs " +
                   std::to_string(memory_mb) + " MB; the host's memory budget of " +
                   std::to_string(budget) + " MB is in use by running instances");
  }
  // Least recently used idle instances make room first.
  while (budget && memory_mb_ + memory_mb > budget) {
    Idle* oldest = nullptr;
    std::string oldest_function;
    for (auto& [name, p] : idle_)
      for (auto& i : p)
        if (!oldest || i.view.last_used < oldest->view.last_used) {
          oldest = &i;
          oldest_function = name;
        }
    if (!oldest) break;  // cannot be: the idle ones were counted above
    memory_mb_ -= oldest->view.memory_mb;
    auto& p = idle_[oldest_function];
    const auto at = p.begin() + (oldest - p.data());
    doomed.push_back(std::move(*at));
    p.erase(at);
  }
  memory_mb_ += memory_mb;
}

Lease Scheduler::acquire(const std::string& function, const std::string& digest, uint32_t memory_mb,
                         bool force_new) {
  std::vector<Idle> doomed;  // evicted: they die after the lock is released
  std::optional<Idle> warm;
  bool unreserved = false;
  {
    std::lock_guard lock(mutex_);
    unreserved = admit_locked(function);
    if (!force_new) warm = take_idle_locked(function, digest);
    if (!warm) reserve_memory_locked(function, memory_mb, doomed);
    ++in_flight_[function];
    ++in_flight_total_;
    if (unreserved) ++in_flight_unreserved_;
  }
  Lease lease(this, function, digest, memory_mb);
  lease.unreserved_slot_ = unreserved;
  if (warm) {
    lease.instance_ = std::move(warm->instance);
    lease.warm_ = true;
    lease.start_mode_ = warm->view.start_mode;
    lease.started_ = warm->view.started;
  } else {
    lease.memory_reserved_ = true;
  }
  end_all(doomed);
  return lease;
}

void Scheduler::give_back(Lease& lease) {
  std::unique_ptr<FunctionInstance> doomed;
  {
    std::lock_guard lock(mutex_);
    if (--in_flight_[lease.function_] == 0) in_flight_.erase(lease.function_);
    --in_flight_total_;
    if (lease.unreserved_slot_) --in_flight_unreserved_;
    if (lease.instance_) {
      auto view =
          busy_.count(lease.instance_->id()) ? busy_[lease.instance_->id()] : InstanceView{};
      busy_.erase(lease.instance_->id());
      const auto current = current_digest_.find(lease.function_);
      const bool keep = !stopping_ && lease.instance_->reusable() &&
                        current != current_digest_.end() && current->second == lease.digest_;
      if (keep) {
        view.state = "Idle";
        view.last_used = SystemClock::now();
        idle_[lease.function_].push_back({std::move(lease.instance_), lease.digest_, view});
        wake_.notify_all();
      } else {
        doomed = std::move(lease.instance_);
        memory_mb_ -= lease.memory_mb_;
      }
    } else if (lease.memory_reserved_) {
      memory_mb_ -= lease.memory_mb_;
    }
  }
  if (doomed) {
    doomed.reset();
    if (instance_end_) instance_end_(lease.function_);
  }
}

void Scheduler::set_current_digest(const std::string& function, const std::string& digest) {
  std::vector<Idle> doomed;
  {
    std::lock_guard lock(mutex_);
    if (digest.empty())
      current_digest_.erase(function);
    else
      current_digest_[function] = digest;
    auto it = idle_.find(function);
    if (it == idle_.end()) return;
    auto& pool = it->second;
    evict_locked(
        pool, [&digest](const Idle& i) { return i.digest != digest; }, doomed);
  }
  end_all(doomed);
}

void Scheduler::set_reserved(const std::string& function, std::optional<unsigned> reserved) {
  std::lock_guard lock(mutex_);
  const auto it = reserved_.find(function);
  const unsigned others = reserved_total_ - (it == reserved_.end() ? 0 : it->second);
  if (reserved && others + *reserved > limits_.max_concurrency)
    throw Failure(FailureKind::InvalidParameter,
                  "Specified ReservedConcurrentExecutions for function decreases the host's "
                  "UnreservedConcurrentExecution below its minimum value of [0]: " +
                      std::to_string(others) + " of the host's " +
                      std::to_string(limits_.max_concurrency) + " are reserved by other functions");
  // Slots taken before the change were counted where they were taken; they
  // are given back to the same pool (Lease remembers which).
  if (reserved) {
    reserved_[function] = *reserved;
  } else if (it != reserved_.end()) {
    reserved_.erase(it);
  }
  reserved_total_ = others + reserved.value_or(0);
}

std::optional<unsigned> Scheduler::reserved(const std::string& function) const {
  std::lock_guard lock(mutex_);
  const auto it = reserved_.find(function);
  if (it == reserved_.end()) return std::nullopt;
  return it->second;
}

size_t Scheduler::reap_expired() {
  std::vector<Idle> doomed;
  {
    std::lock_guard lock(mutex_);
    const auto cutoff = SystemClock::now() - limits_.keep_alive;
    for (auto& [name, pool] : idle_)
      evict_locked(
          pool, [cutoff](const Idle& i) { return i.view.last_used <= cutoff; }, doomed);
  }
  end_all(doomed);
  return doomed.size();
}

void Scheduler::reaper() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    // Sleep until the oldest idle instance expires, or until told of a new one.
    std::optional<SystemClock::time_point> next;
    for (const auto& [name, pool] : idle_)
      for (const auto& i : pool)
        if (!next || i.view.last_used + limits_.keep_alive < *next)
          next = i.view.last_used + limits_.keep_alive;
    if (next) {
      wake_.wait_until(lock, *next);
    } else {
      wake_.wait(lock);
    }
    if (stopping_) return;
    lock.unlock();
    reap_expired();
    lock.lock();
  }
}

std::vector<InstanceView> Scheduler::instances() const {
  std::lock_guard lock(mutex_);
  std::vector<InstanceView> out;
  for (const auto& [id, view] : busy_) out.push_back(view);
  for (const auto& [name, pool] : idle_)
    for (const auto& i : pool) out.push_back(i.view);
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return std::tie(a.function, a.id) < std::tie(b.function, b.id);
  });
  return out;
}

size_t Scheduler::idle_count(const std::string& function) const {
  std::lock_guard lock(mutex_);
  const auto it = idle_.find(function);
  return it == idle_.end() ? 0 : it->second.size();
}

uint64_t Scheduler::memory_in_use_mb() const {
  std::lock_guard lock(mutex_);
  return memory_mb_;
}

unsigned Scheduler::in_flight() const {
  std::lock_guard lock(mutex_);
  return in_flight_total_;
}

}  // namespace thaw::invoker
