#pragma once
// MappedArray<T>: a fixed-size array of T in its own MappedRegion, for large tables on a hot path
// (an order index, level arenas) that are probed at random. With try_huge_pages the region is backed
// by 2 MiB pages when the system has them (hugetlbfs pool, else transparent huge pages via madvise):
// a 48 MiB table spans 24 of them instead of 12,288 pages of 4 KiB, which matters once the part of
// the table in use outgrows what the TLB covers. Falls back to normal pages silently; huge_pages()
// says which it got.
//
// Contract: the memory is zero-filled and pre-faulted at create(), never grows or moves. T must be
// trivially copyable and destructible, and all-zero bytes must be a valid T (the array starts as
// size() such values; no constructor runs). Not copyable; movable (the elements stay put).
#include <cstddef>
#include <new>
#include <type_traits>
#include <utility>

#include "hypergate/core/status.hpp"
#include "hypergate/kv/mapped_region.hpp"

namespace hypergate::kv {

template <class T>
class MappedArray {
  static_assert(std::is_trivially_copyable_v<T> && std::is_trivially_destructible_v<T>,
                "MappedArray holds implicit-lifetime values that start as zero bytes");

 public:
  MappedArray() = default;

  [[nodiscard]] static Result<MappedArray> create(std::size_t count, bool try_huge_pages) {
    if (count == 0) return Error{Status::InvalidArgument, "MappedArray: zero elements"};
    if (count > static_cast<std::size_t>(-1) / sizeof(T)) {
      return Error{Status::InvalidArgument, "MappedArray: size overflows"};
    }
    auto region = MappedRegion::map_anonymous(count * sizeof(T), try_huge_pages);
    if (!region) return region.error();
    MappedArray a;
    a.region_ = std::move(region.value());
    a.data_ = reinterpret_cast<T*>(a.region_.data());  // page aligned: aligned for any T
    a.size_ = count;
    return a;
  }

  /// create() for constructors that report failure as std::bad_alloc (as a std::vector would).
  [[nodiscard]] static MappedArray create_or_throw(std::size_t count, bool try_huge_pages) {
    auto a = create(count, try_huge_pages);
    if (!a) throw std::bad_alloc();
    return std::move(a.value());
  }

  MappedArray(MappedArray&& o) noexcept
      : region_(std::move(o.region_)), data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  MappedArray& operator=(MappedArray&& o) noexcept {
    if (this != &o) {
      region_ = std::move(o.region_);
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  MappedArray(const MappedArray&) = delete;
  MappedArray& operator=(const MappedArray&) = delete;
  ~MappedArray() = default;

  [[nodiscard]] T* data() const noexcept { return data_; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] T& operator[](std::size_t i) const noexcept { return data_[i]; }
  [[nodiscard]] T* begin() const noexcept { return data_; }
  [[nodiscard]] T* end() const noexcept { return data_ + size_; }
  [[nodiscard]] bool huge_pages() const noexcept { return region_.huge_pages(); }

 private:
  MappedRegion region_;
  T* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace hypergate::kv
