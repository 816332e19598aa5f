// SigV4 canonicalization and verification on requests made of fuzz bytes:
// method, path, query, headers (an Authorization header among them) and body
// are split from the input at NUL bytes.
#include <cstdint>
#include <string>
#include <vector>

#include "invoker/api/auth/sigv4.hpp"

using namespace thaw::invoker;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t i = 0; i <= input.size(); ++i)
    if (i == input.size() || input[i] == '\0') {
      parts.push_back(input.substr(start, i - start));
      start = i + 1;
    }
  parts.resize(std::max<size_t>(parts.size(), 4));
  SignedRequest r{parts[0], parts[1], parts[2], {}, parts[3]};
  for (size_t i = 4; i + 1 < parts.size(); i += 2) r.headers.push_back({parts[i], parts[i + 1]});
  const std::map<std::string, std::string> keys = {{"AKIAFUZZ", "fuzz-secret"}};
  (void)verify_sigv4_headers(r, keys, 1'700'000'000);
  (void)verify_sigv4(r, keys, 1'700'000'000);
  (void)canonical_request(r, {"host", "x-amz-date"}, sha256_hex(r.body));
  return 0;
}
