#pragma once
// The admin credential: a random token created at first start in the state
// directory (mode 0600); API calls carry it as "Authorization: Bearer ...".

#include <string>

namespace thaw::invoker {

// Reads <state_dir>/admin-token, creating it (32 random bytes, hex) when absent.
std::string load_or_create_admin_token(const std::string& state_dir);

enum class AuthResult { Ok, Missing, Wrong };

// Compares in constant time, so the token cannot be guessed byte by byte.
AuthResult check_bearer(const std::string& authorization_header, const std::string& token);

}  // namespace thaw::invoker
