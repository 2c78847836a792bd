#pragma once
// Configuration: one TOML file describes a deployment (see README "Configuration").
//
// Components read their own section through a Section, which type-checks each value, checks ranges
// and records which keys were read. Errors never throw: they accumulate as Diagnostics naming
// file:line:column and the full key ("configs/x.toml:12:8: source.feed.listen: expected host:port").
// When a component has read its section it calls finish(): every key it did not read is reported as
// an unknown key at that key's position. So the schema lives in one place — the code that uses it.
//
// Overrides ("--set a.b.c=value") are applied to the parsed tree before any read; the values they
// bring carry the position "--set:N:C" (N = which --set, C = the column of the value in that
// argument), so a wrong type given on the command line is reported there, not in the file.
//
// The TOML library (toml++) stays behind this header: Section and Document hold opaque handles.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hypergate/core/status.hpp"

namespace hypergate::config {

struct Diagnostic {
  std::string file;       ///< file name, or "--set" for a command-line override
  std::uint32_t line = 0;  ///< 1-based; 0 when unknown
  std::uint32_t column = 0;
  std::string key;        ///< full dotted key, e.g. "source.feed.listen"
  std::string message;

  /// "file:line:column: key: message"
  [[nodiscard]] std::string to_string() const;
};

class Diagnostics {
 public:
  void add(Diagnostic d) { items_.push_back(std::move(d)); }
  [[nodiscard]] bool empty() const noexcept { return items_.empty(); }
  [[nodiscard]] std::size_t size() const noexcept { return items_.size(); }
  [[nodiscard]] const std::vector<Diagnostic>& items() const noexcept { return items_; }
  /// One diagnostic per line, in file order.
  [[nodiscard]] std::string format() const;

 private:
  std::vector<Diagnostic> items_;
};

/// "host:port"; host may be a name, an IPv4 address or a bracketed IPv6 address.
struct Endpoint {
  std::string host;
  std::uint16_t port = 0;
  [[nodiscard]] std::string to_string() const;
};
/// Parses "host:port" (also "[::1]:80" and ":8080" meaning 0.0.0.0). Empty optional on error.
[[nodiscard]] std::optional<Endpoint> parse_endpoint(std::string_view text);
/// Parses "250ms", "1s", "10us", "500ns", "2m" or a bare integer of nanoseconds.
[[nodiscard]] std::optional<std::uint64_t> parse_duration_ns(std::string_view text);

class Document;

/// One TOML table of a document, e.g. [source.feed]. Cheap to copy; valid while its Document lives.
class Section {
 public:
  [[nodiscard]] const std::string& path() const noexcept { return path_; }  ///< "source.feed"
  [[nodiscard]] std::string_view name() const noexcept;                      ///< "feed"
  [[nodiscard]] bool exists() const noexcept { return node_ != nullptr; }
  [[nodiscard]] bool has(std::string_view key) const;  ///< does not count as reading the key

  // Typed reads. A missing key yields the default; a wrong type or a value out of range records a
  // Diagnostic at the value's position and yields the default.
  std::string string(std::string_view key, std::string_view def);
  std::optional<std::string> required_string(std::string_view key);
  std::int64_t integer(std::string_view key, std::int64_t def, std::int64_t min, std::int64_t max);
  double number(std::string_view key, double def, double min, double max);
  bool boolean(std::string_view key, bool def);
  std::uint64_t duration_ns(std::string_view key, std::uint64_t def);
  std::optional<Endpoint> endpoint(std::string_view key, std::string_view def);
  std::vector<std::string> string_list(std::string_view key);
  /// An array of integers, each within [min, max]; empty when absent.
  std::vector<std::int64_t> integer_list(std::string_view key, std::int64_t min, std::int64_t max);
  /// One of `allowed`; anything else is an error that lists the allowed values.
  std::string choice(std::string_view key, std::string_view def, std::vector<std::string_view> allowed);
  /// A nested table, e.g. section.table("tls"). exists() is false when absent.
  Section table(std::string_view key);

  /// Records a component-specific error at the key's value (or the section's position if the key is
  /// absent), e.g. "unknown source type" pointing at the `type` string.
  void error(std::string_view key, std::string message);
  /// Reports every key of this table that no read touched as "unknown key". Call once, last.
  void finish();

 private:
  friend class Document;
  Section(Document* doc, const void* node, std::string path) : doc_(doc), node_(node), path_(std::move(path)) {}
  const void* lookup(std::string_view key);  // marks `key` read; the const toml::node* or nullptr
  void report(const void* node, std::string_view key, std::string message);  // at node (or section)
  [[nodiscard]] std::string full_key(std::string_view key) const;
  Document* doc_ = nullptr;
  const void* node_ = nullptr;  // const toml::table*
  std::string path_;
};

/// A parsed configuration file with command-line overrides applied.
class Document {
 public:
  /// Parses `path` then applies overrides of the form "a.b.c=value" (value parsed as TOML when it
  /// can be, as a string otherwise). Syntax errors are returned as the Error (with file:line:col).
  [[nodiscard]] static Result<std::unique_ptr<Document>> load(const std::string& path,
                                                              const std::vector<std::string>& overrides = {});
  /// Same from text in memory; `name` stands for the file name in diagnostics.
  [[nodiscard]] static Result<std::unique_ptr<Document>> parse(std::string_view text, std::string name,
                                                               const std::vector<std::string>& overrides = {});
  ~Document();
  Document(const Document&) = delete;
  Document& operator=(const Document&) = delete;

  /// A top-level table ("gateway", "admin", ...). Reading it marks it known.
  Section section(std::string_view name);
  /// The named instances under a top-level table: [source.a], [source.b] -> sections "source.a", "source.b".
  std::vector<Section> instances(std::string_view group);
  /// Reports top-level tables and keys that no section()/instances() call touched.
  void finish();

  [[nodiscard]] Diagnostics& diagnostics() noexcept { return diags_; }
  [[nodiscard]] const Diagnostics& diagnostics() const noexcept { return diags_; }
  [[nodiscard]] const std::string& file() const noexcept { return file_; }

 private:
  friend class Section;
  Document();
  struct State;
  std::unique_ptr<State> state_;
  std::string file_;
  Diagnostics diags_;
};

}  // namespace hypergate::config
