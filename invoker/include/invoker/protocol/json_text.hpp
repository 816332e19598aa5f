#pragma once
// JSON that cannot throw on its way out. Much of what thawd writes as JSON
// (error messages, log lines, events) carries bytes a function chose, and a
// function may choose bytes that are not UTF-8: nlohmann's dump() throws on
// those, and a throw out of a worker thread ends thawd. Text from an instance
// is made valid UTF-8 where it enters (valid_utf8), and every dump goes
// through json_text, which replaces what is left instead of throwing.

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace thaw::invoker {

// Whether `bytes` is well-formed UTF-8 throughout (RFC 3629).
bool is_utf8(std::string_view bytes);

// `bytes` with every sequence that is not UTF-8 replaced by U+FFFD.
std::string valid_utf8(std::string_view bytes);

// `bytes` cut to at most `max_bytes`, at a character boundary, as valid UTF-8.
std::string bounded_utf8(std::string_view bytes, size_t max_bytes);

// `text` parsed, or a discarded value when it is no JSON or nests deeper than
// `max_depth`. For JSON a function wrote that thawd writes out again: dump()
// recurses once per level, and [[[...]]] a million deep overflowed the stack.
nlohmann::json parse_json_within_depth(std::string_view text, int max_depth);

// value.dump(indent), never throwing on invalid UTF-8.
std::string json_text(const nlohmann::json& value, int indent = -1);

// The string at `key` of `object`, or `fallback` when `object` is no object,
// has no such key or holds something else there. Never throws.
std::string string_field(const nlohmann::json& object, const char* key,
                         const std::string& fallback = "");

}  // namespace thaw::invoker
