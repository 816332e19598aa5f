#include "invoker/invocation/async_invoker.hpp"

#include <chrono>

#include "invoker/api/lambda/lambda_errors.hpp"
#include "invoker/observability/log.hpp"

namespace thaw::invoker {

namespace {

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

AsyncInvoker::AsyncInvoker(EventQueue& queue, Run run, Lookup lookup, unsigned workers)
    : queue_(queue), run_(std::move(run)), lookup_(std::move(lookup)) {
  queue_.recover();
  for (unsigned i = 0; i < workers; ++i) workers_.emplace_back([this] { work(); });
}

AsyncInvoker::~AsyncInvoker() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto& w : workers_) w.join();
}

std::string AsyncInvoker::submit(const FunctionRecord& f, const std::string& payload) {
  auto id = queue_.enqueue(f.config.name, payload, f.max_retry_attempts, f.max_event_age_s);
  wake_.notify_one();
  return id;
}

void AsyncInvoker::forget(const std::string& function) {
  queue_.drop_function(function);
}

std::optional<std::string> AsyncInvoker::redrive(const std::string& dead_letter_id) {
  const auto letter = queue_.dead_letter(dead_letter_id);
  if (!letter) return std::nullopt;
  const auto f = lookup_(letter->function);
  auto id = queue_.redrive(dead_letter_id, f.max_retry_attempts, f.max_event_age_s);
  if (id) wake_.notify_one();
  return id;
}

void AsyncInvoker::work() {
  for (;;) {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return;
    }
    try {
      queue_.expire(now_ms());
      if (auto event = queue_.claim(now_ms())) {
        run_one(*event);
        continue;
      }
    } catch (const std::exception& e) {
      // A worker that stops leaves events unserved; one that throws ends thawd.
      log_event("error", "async_worker_error", {{"reason", e.what()}});
    }
    // Nothing due: wait for a submit, or look again in a second for retries
    // whose backoff has passed.
    std::unique_lock lock(mutex_);
    if (stopping_) return;
    wake_.wait_for(lock, std::chrono::seconds(1));
  }
}

void AsyncInvoker::run_one(const QueuedEvent& event) {
  std::string type, message;
  try {
    const auto result = run_(event.function, event.payload, event.id);
    if (!result.error) {
      queue_.succeed(event.id);
      return;
    }
    type = result.error->type;
    message = result.error->message;
  } catch (const Failure& e) {
    // Throttled or gone: it counts as a failed attempt, like a function error,
    // recorded with the error type Lambda's API would have answered.
    type = lambda_shape(e.kind).type;
    message = e.what();
  } catch (const std::exception& e) {
    type = "ServiceException";
    message = e.what();
  }
  const auto outcome = queue_.fail(event.id, type, message, now_ms());
  log_event(outcome == EventQueue::Outcome::DeadLettered ? "warn" : "info",
            outcome == EventQueue::Outcome::DeadLettered ? "event_dead_lettered" : "event_retry",
            {{"function", event.function},
             {"request_id", event.id},
             {"attempts", event.attempts + 1},
             {"error_type", type},
             {"error", message}});
}

}  // namespace thaw::invoker
