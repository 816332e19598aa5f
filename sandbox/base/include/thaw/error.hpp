#pragma once
// One error type for every layer: the operation that failed, its errno, and the
// context added on the way up, so a failure reads like a sentence:
// "starting instance f1: mounting rootfs: open /x: No such file or directory".

#include <cerrno>
#include <stdexcept>
#include <string>
#include <utility>

namespace thaw {

class Error : public std::runtime_error {
 public:
  explicit Error(std::string message, int err = 0)
      : std::runtime_error(compose(message, err)), message_(std::move(message)), errno_(err) {}

  // errno of the system call at the bottom of the chain, 0 when none.
  int error_number() const noexcept { return errno_; }

  // A copy of this error with `context` put in front of the message.
  Error with_context(const std::string& context) const {
    Error e(context + ": " + message_, errno_);
    return e;
  }

 private:
  static std::string compose(const std::string& message, int err);
  std::string message_;
  int errno_;
};

// Throws Error("<what>: strerror(errno)") with the current errno.
[[noreturn]] void throw_errno(const std::string& what);
[[noreturn]] void throw_errno(const std::string& what, int err);

// Runs `f`; an Error escaping it gets `context` in front of its message.
template <class F>
auto with_context(const std::string& context, F&& f) -> decltype(f()) {
  try {
    return std::forward<F>(f)();
  } catch (const Error& e) {
    throw e.with_context(context);
  }
}

}  // namespace thaw
