#include "invoker/admin_token.hpp"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "sandbox/error.hpp"
#include "sandbox/unique_fd.hpp"

namespace thaw::invoker {

std::string load_or_create_admin_token(const std::string& state_dir) {
  const auto path = state_dir + "/admin-token";
  {
    std::ifstream in(path);
    std::string token;
    if (in >> token && token.size() == 64) return token;
  }
  unsigned char raw[32];
  if (getrandom(raw, sizeof raw, 0) != static_cast<ssize_t>(sizeof raw))
    throw_errno("admin token: getrandom");
  static const char* hex = "0123456789abcdef";
  std::string token;
  for (unsigned char b : raw) {
    token += hex[b >> 4];
    token += hex[b & 15];
  }
  // Created 0600 from the start: never readable by others, not even briefly.
  UniqueFd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!fd) throw_errno("admin token: create " + path);
  fchmod(fd.get(), 0600);
  const auto line = token + "\n";
  if (write(fd.get(), line.data(), line.size()) != static_cast<ssize_t>(line.size()))
    throw_errno("admin token: write " + path);
  return token;
}

AuthResult check_bearer(const std::string& header, const std::string& token) {
  const std::string prefix = "Bearer ";
  if (header.empty()) return AuthResult::Missing;
  if (header.rfind(prefix, 0) != 0) return AuthResult::Wrong;
  const auto given = header.substr(prefix.size());
  unsigned char diff = given.size() == token.size() ? 0 : 1;
  for (size_t i = 0; i < token.size(); ++i)
    diff |= static_cast<unsigned char>(token[i] ^ (i < given.size() ? given[i] : 0));
  return diff == 0 ? AuthResult::Ok : AuthResult::Wrong;
}

}  // namespace thaw::invoker
