#pragma once
// Asynchronous invocations (X-Amz-Invocation-Type: Event), as Lambda runs
// them: the event is written to the durable queue before 202 is answered,
// workers run it at least once, a function error is retried (twice by
// default, with backoff), and what still fails lands in the dead-letter list.

#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "invoker/functions/registry.hpp"
#include "invoker/instances/function_instance.hpp"
#include "invoker/invocation/event_queue.hpp"

namespace thaw::invoker {

class AsyncInvoker {
 public:
  // Runs one event; throws a Failure when it could not run (throttled, gone).
  using Run = std::function<InvokeResult(const std::string& function, const std::string& payload,
                                         const std::string& request_id)>;

  // A function's current record (a NotFound Failure when it is gone).
  using Lookup = std::function<FunctionRecord(const std::string& function)>;

  // Events left running by a killed thawd are queued again first.
  AsyncInvoker(EventQueue& queue, Run run, Lookup lookup, unsigned workers);
  ~AsyncInvoker();  // workers finish the event in hand; queued ones wait for the next start
  AsyncInvoker(const AsyncInvoker&) = delete;
  AsyncInvoker& operator=(const AsyncInvoker&) = delete;

  // Durable when it returns; the request id is the one the invocation will run with.
  std::string submit(const FunctionRecord& function, const std::string& payload);
  // A deleted function's queued events are dropped (its dead letters stay).
  void forget(const std::string& function);
  // Queues a dead letter again; nullopt when there is no such dead letter.
  std::optional<std::string> redrive(const std::string& dead_letter_id);
  EventQueue& queue() { return queue_; }

 private:
  void work();
  void run_one(const QueuedEvent& event);

  EventQueue& queue_;
  Run run_;
  Lookup lookup_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace thaw::invoker
