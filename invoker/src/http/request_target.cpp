#include "invoker/http/request_target.hpp"

namespace thaw::invoker {

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string percent_decode(const std::string& text, bool plus_is_space) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size()) {
      const int hi = hex_value(text[i + 1]), lo = hex_value(text[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
        continue;
      }
    }
    out += plus_is_space && text[i] == '+' ? ' ' : text[i];
  }
  return out;
}

RequestTarget parse_target(const std::string& target) {
  RequestTarget t;
  const auto q = target.find('?');
  t.path = target.substr(0, q);
  size_t start = 0;
  while (start <= t.path.size()) {
    const auto end = t.path.find('/', start);
    const auto piece = t.path.substr(start, end == std::string::npos ? end : end - start);
    if (!piece.empty()) t.segments.push_back(percent_decode(piece, false));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  if (q == std::string::npos) return t;
  const auto query = target.substr(q + 1);
  size_t pos = 0;
  while (pos <= query.size()) {
    const auto amp = query.find('&', pos);
    const auto pair = query.substr(pos, amp == std::string::npos ? amp : amp - pos);
    if (!pair.empty()) {
      const auto eq = pair.find('=');
      t.query[percent_decode(pair.substr(0, eq))] =
          eq == std::string::npos ? "" : percent_decode(pair.substr(eq + 1));
    }
    if (amp == std::string::npos) break;
    pos = amp + 1;
  }
  return t;
}

std::string function_name_from_path(const std::string& segment) {
  // arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]
  const std::string marker = ":function:";
  const auto at = segment.find(marker);
  if (segment.rfind("arn:", 0) != 0 || at == std::string::npos) return segment;
  auto name = segment.substr(at + marker.size());
  return name.substr(0, name.find(':'));
}

}  // namespace thaw::invoker
