#include "invoker/api/auth/admin_token.hpp"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "thaw/error.hpp"
#include "thaw/unique_fd.hpp"

namespace thaw::invoker {

namespace {

// `n` characters drawn uniformly from `alphabet` (its size divides 256).
std::string random_text(const std::string& alphabet, size_t n) {
  std::string raw(n, '\0');
  if (getrandom(raw.data(), n, 0) != static_cast<ssize_t>(n)) throw_errno("credentials: getrandom");
  std::string out;
  for (unsigned char b : raw) out += alphabet[b % alphabet.size()];
  return out;
}

// Created 0600 from the start: never readable by others, not even briefly.
void write_private_file(const std::string& path, const std::string& text) {
  UniqueFd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!fd) throw_errno("credentials: create " + path);
  fchmod(fd.get(), 0600);
  if (write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
    throw_errno("credentials: write " + path);
}

}  // namespace

std::string load_or_create_admin_token(const std::string& state_dir) {
  const auto path = state_dir + "/admin-token";
  {
    std::ifstream in(path);
    std::string token;
    if (in >> token && token.size() == 64) return token;
  }
  auto token = random_text("0123456789abcdef", 64);
  write_private_file(path, token + "\n");
  return token;
}

AccessKey load_or_create_access_key(const std::string& state_dir) {
  const auto path = state_dir + "/aws-credentials";
  AccessKey key;
  {
    std::ifstream in(path);
    for (std::string name, eq, value; in >> name;) {
      if (name == "aws_access_key_id" && in >> eq >> value) key.id = value;
      if (name == "aws_secret_access_key" && in >> eq >> value) key.secret = value;
    }
  }
  if (key.id.size() == 20 && key.secret.size() == 40) return key;
  // Shaped like AWS's: AKIA + 16 upper-case letters and digits; a 40-character secret.
  key.id = "AKIA" + random_text("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16);
  key.secret = random_text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", 40);
  // The AWS shared-credentials format, so the AWS CLI and SDKs can read it as it is.
  write_private_file(path, "[thaw]\naws_access_key_id = " + key.id +
                               "\naws_secret_access_key = " + key.secret + "\n");
  return key;
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
