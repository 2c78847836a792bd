#pragma once
// Status codes and Result<T>: errors are values in HyperGate, never exceptions on the hot path
// and never crashes. A Status is one byte; a Result carries either a value or an Error with text.
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace hypergate {

enum class Status : std::uint8_t {
  Ok = 0,
  NotFound,         // key or item does not exist
  Retry,            // a concurrent writer kept the data moving; try again later
  ArenaFull,        // fixed-capacity memory exhausted
  IndexFull,        // index reached its load-factor limit
  KeyTooLarge,
  ValueTooLarge,
  InvalidArgument,
  QueueFull,        // a ring or lane had no room (COLLISION at the valve level)
  Closed,           // the other side has gone
  IoError,          // an operating-system call failed; see the accompanying Error text
  Malformed,        // bad input bytes (counted and rejected by the caller)
  Unsupported,
};

[[nodiscard]] constexpr std::string_view to_string(Status s) noexcept {
  switch (s) {
    case Status::Ok: return "Ok";
    case Status::NotFound: return "NotFound";
    case Status::Retry: return "Retry";
    case Status::ArenaFull: return "ArenaFull";
    case Status::IndexFull: return "IndexFull";
    case Status::KeyTooLarge: return "KeyTooLarge";
    case Status::ValueTooLarge: return "ValueTooLarge";
    case Status::InvalidArgument: return "InvalidArgument";
    case Status::QueueFull: return "QueueFull";
    case Status::Closed: return "Closed";
    case Status::IoError: return "IoError";
    case Status::Malformed: return "Malformed";
    case Status::Unsupported: return "Unsupported";
  }
  return "Unknown";
}

/// An error for the cold path: a code and a sentence for the operator.
struct Error {
  Status code = Status::InvalidArgument;
  std::string message;
};

/// Either a T or an Error (a minimal std::expected, which C++20 lacks).
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}            // NOLINT: implicit by design
  Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}        // NOLINT: implicit by design

  [[nodiscard]] bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  [[nodiscard]] T& value() & { return std::get<0>(v_); }
  [[nodiscard]] const T& value() const& { return std::get<0>(v_); }
  [[nodiscard]] T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &std::get<0>(v_); }
  const T* operator->() const { return &std::get<0>(v_); }
  T& operator*() & { return std::get<0>(v_); }

  [[nodiscard]] const Error& error() const& { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

/// Result<void>: success or an Error.
template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT: implicit by design
  [[nodiscard]] bool ok() const noexcept { return ok_; }
  explicit operator bool() const noexcept { return ok_; }
  [[nodiscard]] const Error& error() const& { return error_; }

 private:
  Error error_{Status::Ok, {}};
  bool ok_ = true;
};

}  // namespace hypergate
