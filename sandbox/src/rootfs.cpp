// The shared root template and per-instance scratch mounts.
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "sandbox/rootfs.hpp"
#include "thaw/error.hpp"
#include "thaw/work_queue.hpp"

namespace fs = std::filesystem;

namespace thaw::sandbox {

namespace {

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  if (!out) throw Error("root template: write " + path.string());
}

void copy_if_present(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(from, ec))) return;
  fs::create_directories(to.parent_path());
  fs::copy(from, to,
           fs::copy_options::recursive | fs::copy_options::copy_symlinks |
               fs::copy_options::overwrite_existing,
           ec);
  if (ec) throw Error("root template: copy " + from.string() + ": " + ec.message());
}

}  // namespace

std::string prepare_root_template(const std::string& dir, const RootTemplateOptions& o) {
  try {
    const fs::path root(dir);
    fs::remove_all(root);
    for (const char* d : {"usr", "var/task", "opt/thaw/runtime", "tmp", "proc", "dev", "etc"})
      fs::create_directories(root / d);
    // Debian's merged /usr: the top-level directories are links into it.
    for (const char* l : {"bin", "lib", "lib64", "sbin"})
      fs::create_directory_symlink(std::string("usr/") + l, root / l);
    // Mount points for the device nodes bound from the host.
    for (const char* d : {"null", "zero", "full", "random", "urandom"})
      write_text(root / "dev" / d, "");
    fs::create_directory_symlink("/proc/self/fd", root / "dev/fd");
    fs::create_symlink("/proc/self/fd/0", root / "dev/stdin");
    fs::create_symlink("/proc/self/fd/1", root / "dev/stdout");
    fs::create_symlink("/proc/self/fd/2", root / "dev/stderr");
    // POSIX shared memory lives in the instance's /tmp and shares its size limit.
    fs::create_directory_symlink("/tmp", root / "dev/shm");

    const auto uid = std::to_string(o.function_uid), gid = std::to_string(o.function_gid);
    write_text(root / "etc/passwd",
               "root:x:0:0:root:/root:/usr/sbin/nologin\nsbx_user:x:" + uid + ":" + gid +
                   "::/tmp:/usr/sbin/nologin\n"
                   "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n");
    write_text(root / "etc/group", "root:x:0:\nsbx_user:x:" + gid + ":\nnogroup:x:65534:\n");
    // Per function, bound at /etc/thaw (invoker/instances/instance_network.hpp).
    fs::create_directories(root / "etc/thaw");
    fs::create_symlink("thaw/hosts", root / "etc/hosts");
    write_text(root / "etc/hostname", "thaw\n");
    write_text(root / "etc/nsswitch.conf", "passwd: files\ngroup: files\nhosts: files dns\n");
    fs::create_symlink("thaw/resolv.conf", root / "etc/resolv.conf");
    copy_if_present("/etc/ld.so.cache", root / "etc/ld.so.cache");
    copy_if_present("/etc/localtime", root / "etc/localtime");
    copy_if_present("/etc/ssl/certs", root / "etc/ssl/certs");
    // Debian's numpy finds its BLAS through the alternatives links.
    copy_if_present("/etc/alternatives", root / "etc/alternatives");
    fs::permissions(root / "tmp", fs::perms(01777));
    return dir;
  } catch (const fs::filesystem_error& e) {
    throw Error("root template: " + std::string(e.what()));
  }
}

uint64_t scratch_inodes(uint64_t size_bytes) {
  return std::max<uint64_t>(1024, size_bytes / (16 << 10));
}

ScratchMount::ScratchMount(std::string dir, uint64_t size_bytes, uid_t host_uid, gid_t host_gid)
    : dir_(std::move(dir)), view_(std::make_shared<HostView>()) {
  view_->dir = dir_;
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) throw Error("scratch: mkdir " + dir_ + ": " + ec.message());
  // An inode per 16 KiB, as ext4 makes by default: without a bound a function
  // fills the host's memory with empty files (a tmpfs counts no inode
  // against its size), and every name would go into its snapshot.
  const auto options = "size=" + std::to_string(size_bytes) +
                       ",nr_inodes=" + std::to_string(scratch_inodes(size_bytes)) +
                       ",mode=1777,uid=" + std::to_string(host_uid) +
                       ",gid=" + std::to_string(host_gid);
  if (mount("thaw-tmp", dir_.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, options.c_str()) != 0) {
    const int err = errno;
    rmdir(dir_.c_str());
    throw_errno("scratch: mount tmpfs (" + options + ") on " + dir_, err);
  }
}

int ScratchMount::HostView::detach() {
  std::lock_guard lock(mutex);
  if (!attached) return 0;
  if (umount2(dir.c_str(), MNT_DETACH) != 0) return errno;
  attached = false;
  return 0;
}

void ScratchMount::detach_host_view(WorkQueue* later) {
  if (later) {
    // A failure there is left to the destructor, which tries again.
    later->post([view = view_] { view->detach(); });
    return;
  }
  if (const int err = view_->detach()) throw_errno("scratch: detach " + dir_, err);
}

ScratchMount::~ScratchMount() {
  view_->detach();
  rmdir(dir_.c_str());
}

}  // namespace thaw::sandbox
