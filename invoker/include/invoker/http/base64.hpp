#pragma once
// Base64 as Lambda's API carries it (Code.ZipFile, X-Amz-Log-Result,
// CodeSha256), shared by thawd and the thaw client.

#include <cstddef>
#include <string>
#include <string_view>

namespace thaw::invoker {

// Lambda reports CodeSha256 as base64 of the raw digest.
std::string base64_of_hex(const std::string& hex);
std::string to_base64(const std::string& raw);
// Decodes up to the first character outside base64's alphabet; `read` gets
// how many characters that was. Any input is safe (Beast's decoded_size()
// is short by up to two bytes for a length that is no multiple of 4).
std::string from_base64(std::string_view text, size_t* read = nullptr);

}  // namespace thaw::invoker
