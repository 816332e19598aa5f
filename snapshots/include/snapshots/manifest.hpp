#pragma once
// A snapshot's manifest: what it was made from and a checksum of every file.
// Loading checks it before use and refuses a mismatch with the reason.

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace thaw::snapshots {

// 2: file names percent-encoded (any bytes, not only UTF-8).
constexpr int kManifestFormat = 2;

struct SnapshotManifest {
  int format = kManifestFormat;
  std::string function_digest;  // code sha256 + configuration + runtime + thaw version
  std::string criu_version;
  std::string kernel_release;
  int64_t created_unix_ms = 0;
  std::map<std::string, std::string> files;  // path relative to the snapshot dir -> sha256
  // What restore needs to rebuild the instance's world.
  std::vector<std::pair<std::string, std::string>> external_mounts;  // mount point inside -> key
  // Descriptors of the instance that lead outside it (channel and log pipes):
  // fd number inside -> the dumped file ("pipe:[456]"). Restore hands fresh
  // ones in their place.
  std::map<int, std::string> inherited;
  // Their file status flags (O_NONBLOCK...): a fresh descriptor gets the same,
  // or a runtime that expects non-blocking reads blocks forever (Node.js does).
  std::map<int, int> inherited_flags;
};

std::string to_json(const SnapshotManifest& m);
SnapshotManifest manifest_from_json(const std::string& text);  // throws Error

// What a restore expects; any difference refuses the snapshot.
struct RestoreExpectations {
  std::string function_digest;
  std::string criu_version;
  std::string kernel_release;
};

// Throws Error naming the first mismatch ("snapshot made by criu 4.1, this host has 4.2.1").
void check_compatible(const SnapshotManifest& m, const RestoreExpectations& expected);

// sha256 of a file's contents, hex. Throws Error.
std::string sha256_file(const std::string& path);

// Whether a file of a snapshot directory is part of its image set (CRIU's
// logs and the manifest itself are not).
bool checksummed(const std::string& relative);
// Whether an entry met walking a snapshot directory is a regular file itself,
// not a symbolic link to one: a link an instance left in /tmp may point
// anywhere on the host, and the snapshot keeps the link, not what it names.
bool plain_file(const std::filesystem::directory_entry& entry);
// `path`, found by walking `dir`, relative to it: by its spelling, without
// the file system calls std::filesystem::relative makes for every component
// (a restore walks the snapshot's files before it starts).
std::string relative_in_walk(const std::filesystem::path& path, const std::string& dir);

// Checksums every regular file under `dir` (except manifest.json and logs).
std::map<std::string, std::string> checksum_tree(const std::string& dir);

// Throws Error naming the first missing, extra or changed file.
void verify_files(const SnapshotManifest& m, const std::string& dir);

}  // namespace thaw::snapshots
