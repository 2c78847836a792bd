#pragma once
// MappedRegion: one contiguous block of memory reserved up front, for Hyperion's arena and index.
//
// Guarantees: the region is mapped once at creation and never grows, moves or shrinks; its pages are
// faulted in before map_*() returns, so the hot path that writes into it takes no page fault (for an
// anonymous region; a file-backed region is populated too, but the kernel may still take one minor
// write fault per page the first time a clean page is dirtied). Errors are Result values carrying
// the failing system call and errno text; nothing throws on failure.
//
// Page kinds, tried in this order when huge pages are requested:
//   HugeTlb          MAP_HUGETLB from the hugetlbfs pool (2 MiB pages; needs vm.nr_hugepages > 0)
//   TransparentHuge  normal mapping aligned to 2 MiB with madvise(MADV_HUGEPAGE)
//   Normal           4 KiB pages
//   File             MAP_SHARED view of a regular file, so the contents survive the process
// A file-backed region holds an exclusive flock() on its file for its lifetime, so two gateways never
// write one store file at the same time.
#include <cstddef>
#include <string>

#include "hypergate/core/status.hpp"

namespace hypergate::kv {

class MappedRegion {
 public:
  enum class PageKind { HugeTlb, TransparentHuge, Normal, File };

  /// Anonymous zero-filled memory of at least `bytes` (rounded up to the page size).
  [[nodiscard]] static Result<MappedRegion> map_anonymous(std::size_t bytes, bool try_huge_pages);

  /// A MAP_SHARED view of the file at `path`. A missing or empty file is created with `bytes` zero
  /// bytes and `created` is set; an existing file must already be exactly `bytes` long.
  [[nodiscard]] static Result<MappedRegion> map_file(const std::string& path, std::size_t bytes,
                                                     bool& created);

  MappedRegion() = default;
  MappedRegion(MappedRegion&& other) noexcept;
  MappedRegion& operator=(MappedRegion&& other) noexcept;
  MappedRegion(const MappedRegion&) = delete;
  MappedRegion& operator=(const MappedRegion&) = delete;
  ~MappedRegion();

  [[nodiscard]] std::byte* data() const noexcept { return data_; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] PageKind page_kind() const noexcept { return kind_; }
  [[nodiscard]] bool huge_pages() const noexcept {
    return kind_ == PageKind::HugeTlb || kind_ == PageKind::TransparentHuge;
  }

  /// msync(MS_SYNC) for a file-backed region (cold path: the hot path never syncs). No-op otherwise.
  [[nodiscard]] Result<void> sync() const;

 private:
  void release() noexcept;

  std::byte* data_ = nullptr;
  std::size_t size_ = 0;          // bytes the caller may use
  void* map_base_ = nullptr;      // what munmap() gets (differs from data_ only before trimming)
  std::size_t map_size_ = 0;
  int fd_ = -1;                   // file-backed only: kept open to hold the flock
  PageKind kind_ = PageKind::Normal;
};

}  // namespace hypergate::kv
