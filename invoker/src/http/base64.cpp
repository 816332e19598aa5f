#include "invoker/http/base64.hpp"

#include <boost/beast/core/detail/base64.hpp>

namespace thaw::invoker {

namespace base64 = boost::beast::detail::base64;

std::string from_base64(std::string_view text, size_t* read) {
  // Found by tests/fuzz: decoded_size(n) is n / 4 * 3, and decoding 4k + 2
  // or 4k + 3 characters writes one or two bytes more.
  std::string out((text.size() + 3) / 4 * 3, '\0');
  const auto [written, consumed] = base64::decode(out.data(), text.data(), text.size());
  out.resize(written);
  if (read) *read = consumed;
  return out;
}

std::string to_base64(const std::string& raw) {
  std::string out(base64::encoded_size(raw.size()), '\0');
  out.resize(base64::encode(out.data(), raw.data(), raw.size()));
  return out;
}

std::string base64_of_hex(const std::string& hex) {
  std::string raw;
  for (size_t i = 0; i + 1 < hex.size(); i += 2)
    raw += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  return to_base64(raw);
}

}  // namespace thaw::invoker
