#pragma once
// thawd's credentials, created at first start in the state directory (mode
// 0600): the admin token, sent as "Authorization: Bearer ...", and an access
// key for requests signed with AWS Signature Version 4 (the AWS SDKs and CLI).

#include <string>

namespace thaw::invoker {

// Reads <state_dir>/admin-token, creating it (32 random bytes, hex) when absent.
std::string load_or_create_admin_token(const std::string& state_dir);

// The access key that AWS SDKs sign requests with (Signature Version 4).
struct AccessKey {
  std::string id;
  std::string secret;
};

// Reads <state_dir>/aws-credentials (AWS's shared-credentials format, profile
// "thaw", mode 0600), creating it when absent.
AccessKey load_or_create_access_key(const std::string& state_dir);

enum class AuthResult { Ok, Missing, Wrong };

// Compares in constant time, so the token cannot be guessed byte by byte.
AuthResult check_bearer(const std::string& authorization_header, const std::string& token);

}  // namespace thaw::invoker
