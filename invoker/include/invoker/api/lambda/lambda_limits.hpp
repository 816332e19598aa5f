#pragma once
// AWS Lambda's documented payload limits, which thaw keeps: one place, so
// the HTTP server, the API and the instance's frame reader agree.

#include <cstdint>

namespace thaw::invoker {

// A synchronous invocation's request and response.
constexpr uint64_t kMaxSyncPayloadBytes = uint64_t{6} << 20;
// An asynchronous invocation's event.
constexpr uint64_t kMaxEventPayloadBytes = uint64_t{1} << 20;
// A code upload: Lambda takes 50 MB zipped, sent as base64 inside JSON.
constexpr uint64_t kMaxCodeUploadRequestBytes = uint64_t{70} << 20;

}  // namespace thaw::invoker
