#pragma once
// The frame protocol's message types, named once. thawd and the runtime
// speak them over the channel (frame_channel.hpp); the bootstraps in
// images/runtimes speak them too, and a unit test checks that each one
// names every message it must know.

#include <array>
#include <string_view>

namespace thaw::invoker::frames {

// Runtime -> thawd
inline constexpr std::string_view kReady = "ready";                   // init done, or resumed
inline constexpr std::string_view kInitError = "init_error";          // init failed; body: error
inline constexpr std::string_view kResponse = "response";             // body: the result
inline constexpr std::string_view kError = "error";                   // body: Lambda's error JSON
inline constexpr std::string_view kSnapshotReady = "snapshot_ready";  // quiet, may be dumped
// thawd -> runtime
inline constexpr std::string_view kInvoke = "invoke";                     // body: the event
inline constexpr std::string_view kPrepareSnapshot = "prepare_snapshot";  // run before-hooks
inline constexpr std::string_view kRestored = "restored";                 // run after-hooks

inline constexpr std::array<std::string_view, 8> kAll = {
    kReady, kInitError, kResponse, kError, kSnapshotReady, kInvoke, kPrepareSnapshot, kRestored};

}  // namespace thaw::invoker::frames
