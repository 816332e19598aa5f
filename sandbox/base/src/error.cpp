#include "thaw/error.hpp"

#include <cstring>

namespace thaw {

std::string Error::compose(const std::string& message, int err) {
  if (err == 0) return message;
  return message + ": " + std::strerror(err);
}

void throw_errno(const std::string& what) {
  throw_errno(what, errno);
}

void throw_errno(const std::string& what, int err) {
  throw Error(what, err);
}

}  // namespace thaw
