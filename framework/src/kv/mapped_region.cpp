// MappedRegion: mmap with huge pages when available, pre-faulted, optionally file-backed.
#include "hypergate/kv/mapped_region.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <utility>

namespace hypergate::kv {
namespace {

constexpr std::size_t kHugePage = std::size_t{2} << 20;   // x86-64 and AArch64 (4K granule) PMD size

std::size_t page_size() noexcept {
  const long p = ::sysconf(_SC_PAGESIZE);
  return p > 0 ? static_cast<std::size_t>(p) : 4096;
}

std::size_t round_up(std::size_t n, std::size_t to) noexcept { return (n + to - 1) / to * to; }

Error sys_error(const char* what, const std::string& subject) {
  std::string msg = what;
  if (!subject.empty()) msg += " '" + subject + "'";
  msg += ": ";
  msg += std::strerror(errno);
  return Error{Status::IoError, std::move(msg)};
}

// Touch one byte per page so every page is resident and writable before the hot path runs.
void prefault(std::byte* p, std::size_t n, std::size_t step) noexcept {
  for (std::size_t off = 0; off < n; off += step) {
    *static_cast<volatile std::byte*>(p + off) = std::byte{0};
  }
}

}  // namespace

Result<MappedRegion> MappedRegion::map_anonymous(std::size_t bytes, bool try_huge_pages) {
  if (bytes == 0) return Error{Status::InvalidArgument, "MappedRegion: zero-sized region"};
  MappedRegion r;
#if defined(MAP_HUGETLB)
  if (try_huge_pages) {
    const std::size_t len = round_up(bytes, kHugePage);
    void* p = ::mmap(nullptr, len, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_POPULATE, -1, 0);
    if (p != MAP_FAILED) {
      r.map_base_ = p;
      r.map_size_ = len;
      r.data_ = static_cast<std::byte*>(p);
      r.size_ = len;
      r.kind_ = PageKind::HugeTlb;
      return r;
    }
  }
#endif
  const std::size_t len = round_up(bytes, page_size());
  // For transparent huge pages the region must start on a 2 MiB boundary: over-reserve and trim.
  const std::size_t reserve = try_huge_pages ? len + kHugePage : len;
  void* p = ::mmap(nullptr, reserve, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return sys_error("mmap (anonymous arena)", {});
  auto* base = static_cast<std::byte*>(p);
  std::byte* start = base;
  if (try_huge_pages) {
    const auto addr = reinterpret_cast<std::uintptr_t>(base);
    start = base + (round_up(addr, kHugePage) - addr);
    const std::size_t head = static_cast<std::size_t>(start - base);
    const std::size_t tail = reserve - head - len;
    if (head > 0) ::munmap(base, head);
    if (tail > 0) ::munmap(start + len, tail);
  }
  r.map_base_ = start;
  r.map_size_ = len;
  r.data_ = start;
  r.size_ = len;
  r.kind_ = PageKind::Normal;
#if defined(MADV_HUGEPAGE)
  if (try_huge_pages && ::madvise(start, len, MADV_HUGEPAGE) == 0) r.kind_ = PageKind::TransparentHuge;
#endif
  prefault(start, len, page_size());
  return r;
}

Result<MappedRegion> MappedRegion::map_file(const std::string& path, std::size_t bytes, bool& created) {
  created = false;
  if (bytes == 0) return Error{Status::InvalidArgument, "MappedRegion: zero-sized region"};
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return sys_error("open", path);
  MappedRegion r;
  r.fd_ = fd;   // closed by r's destructor on every error path below
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) return sys_error("flock (store file in use?)", path);
  struct stat st {};
  if (::fstat(fd, &st) != 0) return sys_error("fstat", path);
  if (st.st_size == 0) {
    if (::ftruncate(fd, static_cast<off_t>(bytes)) != 0) return sys_error("ftruncate", path);
    created = true;
  } else if (static_cast<std::size_t>(st.st_size) != bytes) {
    return Error{Status::InvalidArgument, "store file '" + path + "' is " + std::to_string(st.st_size) +
                                              " bytes, expected arena_bytes = " + std::to_string(bytes)};
  }
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
  if (p == MAP_FAILED) return sys_error("mmap", path);
  r.map_base_ = p;
  r.map_size_ = bytes;
  r.data_ = static_cast<std::byte*>(p);
  r.size_ = bytes;
  r.kind_ = PageKind::File;
  return r;
}

MappedRegion::MappedRegion(MappedRegion&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      map_base_(std::exchange(other.map_base_, nullptr)),
      map_size_(std::exchange(other.map_size_, 0)),
      fd_(std::exchange(other.fd_, -1)),
      kind_(other.kind_) {}

MappedRegion& MappedRegion::operator=(MappedRegion&& other) noexcept {
  if (this != &other) {
    release();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    map_base_ = std::exchange(other.map_base_, nullptr);
    map_size_ = std::exchange(other.map_size_, 0);
    fd_ = std::exchange(other.fd_, -1);
    kind_ = other.kind_;
  }
  return *this;
}

MappedRegion::~MappedRegion() { release(); }

void MappedRegion::release() noexcept {
  if (map_base_ != nullptr) ::munmap(map_base_, map_size_);
  if (fd_ >= 0) ::close(fd_);   // also drops the flock
  map_base_ = nullptr;
  data_ = nullptr;
  size_ = map_size_ = 0;
  fd_ = -1;
}

Result<void> MappedRegion::sync() const {
  if (kind_ != PageKind::File || data_ == nullptr) return {};
  if (::msync(map_base_, map_size_, MS_SYNC) != 0) return sys_error("msync", {});
  return {};
}

}  // namespace hypergate::kv
