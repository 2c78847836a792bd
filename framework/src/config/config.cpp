// Configuration documents on top of toml++ (see config.hpp for the contract).
//
// How reads are tracked: every table a Section looks at has a Use entry (keyed by the table's
// address, stable because toml++ tables own their children through unique_ptr and the tree is
// never modified after load). Every lookup — hit or miss — records the key as "asked"; finish()
// reports the keys that exist but were never asked for, at their own position, and suggests the
// closest asked key ("did you mean 'listen'?"). All of this is cold path: start-up only.
//
// toml++ here is the Debian shared build, compiled with exceptions (its ABI namespace is toml::ex):
// toml::parse throws toml::parse_error, which is caught here and turned into an Error.
#include "hypergate/config/config.hpp"

#include <arpa/inet.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <toml++/toml.h>
#include <unordered_map>

namespace hypergate::config {

namespace {

constexpr std::string_view kSetFile = "--set";

std::string_view type_name(toml::node_type t) noexcept {
  switch (t) {
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    case toml::node_type::none: break;
  }
  return "nothing";
}

std::string got(const toml::node& n) {
  std::string s = "got ";
  s += type_name(n.type());
  if (const auto* str = n.as_string()) {
    std::string v = str->get();
    if (v.size() > 40) v = v.substr(0, 40) + "...";
    s += " \"" + v + "\"";
  }
  return s;
}

// Levenshtein distance, for "did you mean" hints on unknown keys (short strings, cold path).
std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string suggestion(std::string_view key, const std::set<std::string, std::less<>>& known) {
  std::string best;
  std::size_t best_d = 3;  // suggest only near misses (at most 2 edits)
  for (const auto& k : known) {
    const std::size_t d = edit_distance(key, k);
    if (d < best_d && d < std::max<std::size_t>(k.size(), 2)) {
      best_d = d;
      best = k;
    }
  }
  return best.empty() ? std::string{} : " (did you mean '" + best + "'?)";
}

bool bare_key_char(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

std::string format_position(std::string_view file, std::uint32_t line, std::uint32_t column) {
  std::string s(file);
  if (line != 0) {
    s += ':' + std::to_string(line);
    if (column != 0) s += ':' + std::to_string(column);
  }
  return s;
}

// File order: positions in the file first, then positions on the command line (--set).
bool before(const toml::source_region& a, const toml::source_region& b) noexcept {
  const bool a_set = a.path && *a.path == kSetFile, b_set = b.path && *b.path == kSetFile;
  if (a_set != b_set) return !a_set;
  if (a.begin.line != b.begin.line) return a.begin.line < b.begin.line;
  return a.begin.column < b.begin.column;
}

}  // namespace

// ----------------------------------------------------------------------------------------------
// Diagnostics
// ----------------------------------------------------------------------------------------------

std::string Diagnostic::to_string() const {
  std::string s = format_position(file, line, column);
  s += ": ";
  if (!key.empty()) {
    s += key;
    s += ": ";
  }
  s += message;
  return s;
}

std::string Diagnostics::format() const {
  // File order: the file's diagnostics by position, then command-line overrides by position.
  std::vector<const Diagnostic*> sorted;
  sorted.reserve(items_.size());
  for (const auto& d : items_) sorted.push_back(&d);
  std::stable_sort(sorted.begin(), sorted.end(), [](const Diagnostic* a, const Diagnostic* b) {
    const bool a_set = a->file == kSetFile, b_set = b->file == kSetFile;
    if (a_set != b_set) return !a_set;
    if (a->line != b->line) return a->line < b->line;
    return a->column < b->column;
  });
  std::string out;
  for (const Diagnostic* d : sorted) {
    out += d->to_string();
    out += '\n';
  }
  return out;
}

// ----------------------------------------------------------------------------------------------
// Endpoints and durations
// ----------------------------------------------------------------------------------------------

std::string Endpoint::to_string() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

namespace {
std::optional<std::uint16_t> parse_port(std::string_view s) {
  if (s.empty() || s.size() > 5) return std::nullopt;
  std::uint32_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<std::uint32_t>(c - '0');
  }
  if (v > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(v);
}

bool valid_ipv6(std::string_view host) {
  const std::string_view addr = host.substr(0, host.find('%'));  // optional zone: fe80::1%eth0
  if (addr.empty() || addr.size() >= INET6_ADDRSTRLEN) return false;
  if (addr.size() < host.size()) {
    const std::string_view zone = host.substr(addr.size() + 1);
    if (zone.empty() || !std::all_of(zone.begin(), zone.end(), bare_key_char)) return false;
  }
  in6_addr out{};
  return inet_pton(AF_INET6, std::string(addr).c_str(), &out) == 1;
}

bool valid_host(std::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  bool all_numeric = true;
  for (char c : host) {
    if (!(bare_key_char(c) || c == '.')) return false;
    if (!((c >= '0' && c <= '9') || c == '.')) all_numeric = false;
  }
  if (host.front() == '.' || host.front() == '-') return false;
  if (all_numeric) {  // looks like IPv4: must be one
    in_addr out{};
    return inet_pton(AF_INET, std::string(host).c_str(), &out) == 1;
  }
  return true;
}
}  // namespace

std::optional<Endpoint> parse_endpoint(std::string_view text) {
  if (text.empty()) return std::nullopt;
  Endpoint ep;
  std::string_view port_text;
  if (text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') return std::nullopt;
    const std::string_view host = text.substr(1, close - 1);
    if (!valid_ipv6(host)) return std::nullopt;
    ep.host = std::string(host);
    port_text = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    const std::string_view host = text.substr(0, colon);
    if (host.empty()) {
      ep.host = "0.0.0.0";
    } else {
      if (!valid_host(host)) return std::nullopt;  // also rejects unbracketed IPv6 (contains ':')
      ep.host = std::string(host);
    }
    port_text = text.substr(colon + 1);
  }
  const auto port = parse_port(port_text);
  if (!port) return std::nullopt;
  ep.port = *port;
  return ep;
}

std::optional<std::uint64_t> parse_duration_ns(std::string_view text) {
  std::size_t i = 0;
  std::uint64_t value = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
    if (__builtin_mul_overflow(value, 10u, &value) ||
        __builtin_add_overflow(value, static_cast<std::uint64_t>(text[i] - '0'), &value)) {
      return std::nullopt;
    }
    ++i;
  }
  if (i == 0) return std::nullopt;
  const std::string_view unit = text.substr(i);
  std::uint64_t scale = 0;
  if (unit.empty() || unit == "ns") scale = 1;
  else if (unit == "us") scale = 1'000;
  else if (unit == "ms") scale = 1'000'000;
  else if (unit == "s") scale = 1'000'000'000;
  else if (unit == "m") scale = 60'000'000'000;
  else if (unit == "h") scale = 3'600'000'000'000;
  else return std::nullopt;
  std::uint64_t ns = 0;
  if (__builtin_mul_overflow(value, scale, &ns)) return std::nullopt;
  return ns;
}

// ----------------------------------------------------------------------------------------------
// Document state
// ----------------------------------------------------------------------------------------------

struct Document::State {
  struct Use {
    std::set<std::string, std::less<>> asked;  // every key looked up, present or not
    bool finished = false;
  };
  toml::table root;
  std::unordered_map<const toml::table*, Use> uses;

  Diagnostic at(const Document& doc, const toml::source_region& src, std::string key, std::string message) const {
    Diagnostic d;
    d.file = src.path ? *src.path : doc.file();
    d.line = src.begin.line;
    d.column = src.begin.column;
    d.key = std::move(key);
    d.message = std::move(message);
    return d;
  }

  // Reports the keys of `table` nobody asked for. `prefix` is the table's dotted path ("" for root).
  void report_unknown(Document& doc, const toml::table& table, const std::string& prefix, bool top_level) {
    Use& use = uses[&table];
    if (use.finished) return;
    use.finished = true;
    std::vector<std::pair<const toml::key*, const toml::node*>> unknown;
    for (auto&& [k, v] : table) {
      if (!use.asked.contains(k.str())) unknown.emplace_back(&k, &v);
    }
    // toml++ keeps keys sorted by name; report in file order.
    std::stable_sort(unknown.begin(), unknown.end(), [](const auto& a, const auto& b) {
      return before(a.first->source(), b.first->source());
    });
    for (const auto& [k, v] : unknown) {
      std::string what = top_level && v->is_table() ? "unknown table" : "unknown key";
      what += suggestion(k->str(), use.asked);
      doc.diags_.add(at(doc, k->source(), prefix.empty() ? std::string(k->str()) : prefix + "." + std::string(k->str()),
                        std::move(what)));
    }
  }
};

Document::Document() : state_(std::make_unique<State>()) {}
Document::~Document() = default;

namespace {

// Parses a one-line TOML document "x<spaces>=<value>" shaped so that the value sits at the column
// it has in the --set argument and on line `index`: positions then point into the command line.
std::optional<toml::table> parse_override_value(std::size_t index, std::size_t eq, std::string_view value) {
  std::string text(index - 1, '\n');
  text += 'x';
  text.append(eq - 1, ' ');
  text += '=';
  text += value;
  try {
    toml::table t = toml::parse(text, kSetFile);
    if (t.size() != 1 || !t.contains("x")) return std::nullopt;  // e.g. a value with a newline in it
    return t;
  } catch (const toml::parse_error&) {
    return std::nullopt;
  }
}

std::string toml_quoted(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

}  // namespace

namespace {
Error set_error(std::size_t index, std::size_t column, std::string_view key, std::string_view message) {
  Diagnostic d{std::string(kSetFile), static_cast<std::uint32_t>(index), static_cast<std::uint32_t>(column),
               std::string(key), std::string(message)};
  return Error{Status::InvalidArgument, d.to_string()};
}
}  // namespace

Result<std::unique_ptr<Document>> Document::parse(std::string_view text, std::string name,
                                                  const std::vector<std::string>& overrides) {
  std::unique_ptr<Document> doc(new Document());
  doc->file_ = std::move(name);
  try {
    doc->state_->root = toml::parse(text, doc->file_);
  } catch (const toml::parse_error& e) {
    const auto& src = e.source();
    Diagnostic d{doc->file_, src.begin.line, src.begin.column, {}, std::string(e.description())};
    return Error{Status::InvalidArgument, d.to_string()};
  } catch (const std::exception& e) {  // allocation failure and the like: still an Error, not a crash
    return Error{Status::InvalidArgument, doc->file_ + ": " + e.what()};
  }

  // Overrides: "a.b.c=value", applied in order (a later --set wins).
  for (std::size_t i = 0; i < overrides.size(); ++i) {
    const std::size_t index = i + 1;
    const std::string_view arg = overrides[i];
    const auto eq = arg.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      return set_error(index, 1, arg, "expected key=value");
    }
    const std::string_view dotted = arg.substr(0, eq);
    std::vector<std::string_view> parts;
    for (std::size_t b = 0;;) {
      const auto dot = dotted.find('.', b);
      const std::string_view part = dotted.substr(b, dot == std::string_view::npos ? dotted.npos : dot - b);
      if (part.empty() || !std::all_of(part.begin(), part.end(), bare_key_char)) {
        return set_error(index, b + 1, dotted, "a key is dot-separated names of [A-Za-z0-9_-]");
      }
      parts.push_back(part);
      if (dot == std::string_view::npos) break;
      b = dot + 1;
    }
    const std::string_view value = arg.substr(eq + 1);
    std::optional<toml::table> parsed = parse_override_value(index, eq, value);
    if (!parsed) parsed = parse_override_value(index, eq, toml_quoted(value));  // not TOML: a string
    if (!parsed) return set_error(index, eq + 2, dotted, "value is not valid UTF-8");
    const toml::source_region key_src = parsed->begin()->first.source();

    try {
      toml::table* table = &doc->state_->root;
      std::string walked;
      for (std::size_t p = 0; p + 1 < parts.size(); ++p) {
        walked += (p ? "." : "") + std::string(parts[p]);
        toml::node* node = table->get(parts[p]);
        if (node == nullptr) {
          // A new table that carries the --set position, so errors about it point at the argument.
          std::optional<toml::table> fresh = parse_override_value(index, eq, "{}");
          if (!fresh) return set_error(index, 1, walked, "cannot create table");
          toml::table* made = fresh->get("x")->as_table();
          table->insert_or_assign(toml::key(parts[p], key_src), std::move(*made));
          node = table->get(parts[p]);
        }
        if (!node->is_table()) {
          return set_error(index, 1, walked, std::string("is ") + std::string(type_name(node->type())) +
                                                 " in " + doc->file_ + ", not a table");
        }
        table = node->as_table();
      }
      toml::node* new_value = parsed->get("x");
      const toml::key leaf(parts.back(), key_src);
      new_value->visit([&](auto&& v) { table->insert_or_assign(leaf, std::move(v)); });
    } catch (const std::exception& e) {
      return set_error(index, 1, dotted, e.what());
    }
  }
  return doc;
}

Result<std::unique_ptr<Document>> Document::load(const std::string& path, const std::vector<std::string>& overrides) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return Error{Status::IoError, "cannot read config file '" + path + "': " + std::strerror(errno)};
  }
  if (!S_ISREG(st.st_mode)) {
    return Error{Status::IoError, "cannot read config file '" + path + "': not a regular file"};
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{Status::IoError, "cannot read config file '" + path + "': " + std::strerror(errno)};
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return Error{Status::IoError, "cannot read config file '" + path + "': read error"};
  return parse(text.str(), path, overrides);
}

Section Document::section(std::string_view name) {
  State::Use& use = state_->uses[&state_->root];
  use.asked.emplace(name);
  const toml::node* node = state_->root.get(name);
  if (node == nullptr) return Section(this, nullptr, std::string(name));
  if (!node->is_table()) {
    diags_.add(state_->at(*this, node->source(), std::string(name),
                          "expected a table [" + std::string(name) + "], " + got(*node)));
    return Section(this, nullptr, std::string(name));
  }
  return Section(this, node->as_table(), std::string(name));
}

std::vector<Section> Document::instances(std::string_view group) {
  State::Use& root_use = state_->uses[&state_->root];
  root_use.asked.emplace(group);
  std::vector<Section> out;
  const toml::node* node = state_->root.get(group);
  if (node == nullptr) return out;
  const toml::table* table = node->as_table();
  if (table == nullptr) {
    diags_.add(state_->at(*this, node->source(), std::string(group),
                          "expected named tables [" + std::string(group) + ".<name>], " + got(*node)));
    return out;
  }
  State::Use& use = state_->uses[table];
  use.finished = true;  // every child is either an instance or reported right here
  std::vector<std::pair<const toml::key*, const toml::table*>> found;
  for (auto&& [k, v] : *table) {
    use.asked.emplace(k.str());
    const std::string full = std::string(group) + "." + std::string(k.str());
    if (!v.is_table()) {
      diags_.add(state_->at(*this, k.source(), full,
                            "expected a table [" + full + "] describing one instance, " + got(v)));
      continue;
    }
    found.emplace_back(&k, v.as_table());
  }
  // File order (toml++ keeps tables sorted by name): by position, --set instances last.
  std::stable_sort(found.begin(), found.end(),
                   [](const auto& a, const auto& b) { return before(a.first->source(), b.first->source()); });
  for (const auto& [k, t] : found) out.push_back(Section(this, t, std::string(group) + "." + std::string(k->str())));
  return out;
}

void Document::finish() { state_->report_unknown(*this, state_->root, {}, true); }

// ----------------------------------------------------------------------------------------------
// Section
// ----------------------------------------------------------------------------------------------

std::string_view Section::name() const noexcept {
  const auto dot = path_.rfind('.');
  return dot == std::string::npos ? std::string_view(path_) : std::string_view(path_).substr(dot + 1);
}

bool Section::has(std::string_view key) const {
  const auto* table = static_cast<const toml::table*>(node_);
  return table != nullptr && table->contains(key);
}

std::string Section::full_key(std::string_view key) const {
  if (path_.empty()) return std::string(key);
  if (key.empty()) return path_;
  return path_ + "." + std::string(key);
}

const void* Section::lookup(std::string_view key) {
  const auto* table = static_cast<const toml::table*>(node_);
  if (table == nullptr) return nullptr;
  doc_->state_->uses[table].asked.emplace(key);
  return table->get(key);
}

void Section::report(const void* node, std::string_view key, std::string message) {
  const auto* n = static_cast<const toml::node*>(node);
  if (n == nullptr) n = static_cast<const toml::table*>(node_);
  if (n != nullptr) {
    doc_->diags_.add(doc_->state_->at(*doc_, n->source(), full_key(key), std::move(message)));
  } else {
    doc_->diags_.add(Diagnostic{doc_->file_, 0, 0, full_key(key), std::move(message)});
  }
}

std::string Section::string(std::string_view key, std::string_view def) {
  const auto* n = static_cast<const toml::node*>(lookup(key));
  if (n == nullptr) return std::string(def);
  if (const auto* s = n->as_string()) return s->get();
  report(n, key, "expected a string, " + got(*n));
  return std::string(def);
}

std::optional<std::string> Section::required_string(std::string_view key) {
  const auto* n = static_cast<const toml::node*>(lookup(key));
  if (n == nullptr) {
    report(nullptr, key, "missing required key '" + std::string(key) + "' in [" + path_ + "]");
    return std::nullopt;
  }
  if (const auto* s = n->as_string()) return s->get();
  report(n, key, "expected a string, " + got(*n));
  return std::nullopt;
}

std::int64_t Section::integer(std::string_view key, std::int64_t def, std::int64_t min, std::int64_t max) {
  const auto* n = static_cast<const toml::node*>(lookup(key));
  if (n == nullptr) return def;
  const auto* i = n->as_integer();
  if (i == nullptr) {
    report(n, key, "expected an integer, " + got(*n));
    return def;
  }
  const std::int64_t v = i->get();
  if (v < min || v > max) {
    report(n, key, "value " + std::to_string(v) + " is out of range [" + std::to_string(min) + ", " +
                       std::to_string(max) + "]");
    return def;
  }
  return v;
}

double Section::number(std::string_view key, double def, double min, double max) {
  const auto* n = static_cast<const toml::node*>(lookup(key));
  if (n == nullptr) return def;
  double v = 0;
  if (const auto* f = n->as_floating_point()) {
    v = f->get();
  } else if (const auto* i = n->as_integer()) {
    v = static_cast<double>(i->get());
  } else {
    report(n, key, "expected a number, " + got(*n));
    return def;
  }
  if (!(v >= min && v <= max)) {  // also rejects nan
    std::ostringstream msg;
    msg << "value " << v << " is out of range [" << min << ", " << max << "]";
    report(n, key, msg.str());
    return def;
  }
  return v;
}

bool Section::boolean(std::string_view key, bool def) {
  const auto* n = static_cast<const toml::node*>(lookup(key));
  if (n == nullptr) return def;
  if (const auto* b = n->as_boolean()) return b->get();
  report(n, key, "expected true or false, " + got(*n));
  return def;
}

std::uint64_t Section::duration_ns(std::string_view key, std::uint64_t def) {
  const auto* n = static_cast<const toml::node*>(lookup(key));
  if (n == nullptr) return def;
  if (const auto* i = n->as_integer()) {
    if (i->get() < 0) {
      report(n, key, "a duration cannot be negative");
      return def;
    }
    return static_cast<std::uint64_t>(i->get());
  }
  if (const auto* s = n->as_string()) {
    if (auto ns = parse_duration_ns(s->get())) return *ns;
  }
  report(n, key, "expected a duration (\"250ms\", \"10us\", \"1s\", \"2m\" or integer nanoseconds), " + got(*n));
  return def;
}

std::optional<Endpoint> Section::endpoint(std::string_view key, std::string_view def) {
  const auto* n = static_cast<const toml::node*>(lookup(key));
  if (n != nullptr) {
    if (const auto* s = n->as_string()) {
      if (auto ep = parse_endpoint(s->get())) return ep;
    }
    report(n, key, "expected host:port (\"127.0.0.1:9901\", \"[::1]:80\", \":8080\"), " + got(*n));
  }
  if (def.empty()) return std::nullopt;
  return parse_endpoint(def);
}

std::vector<std::string> Section::string_list(std::string_view key) {
  std::vector<std::string> out;
  const auto* n = static_cast<const toml::node*>(lookup(key));
  if (n == nullptr) return out;
  const auto* a = n->as_array();
  if (a == nullptr) {
    report(n, key, "expected an array of strings, " + got(*n));
    return out;
  }
  for (std::size_t i = 0; i < a->size(); ++i) {
    const toml::node& e = *a->get(i);
    if (const auto* s = e.as_string()) {
      out.push_back(s->get());
    } else {
      report(&e, key, "element " + std::to_string(i) + ": expected a string, " + got(e));
    }
  }
  return out;
}

std::vector<std::int64_t> Section::integer_list(std::string_view key, std::int64_t min, std::int64_t max) {
  std::vector<std::int64_t> out;
  const auto* n = static_cast<const toml::node*>(lookup(key));
  if (n == nullptr) return out;
  const auto* a = n->as_array();
  if (a == nullptr) {
    report(n, key, "expected an array of integers, " + got(*n));
    return out;
  }
  for (std::size_t i = 0; i < a->size(); ++i) {
    const toml::node& e = *a->get(i);
    const auto* v = e.as_integer();
    if (v == nullptr) {
      report(&e, key, "element " + std::to_string(i) + ": expected an integer, " + got(e));
    } else if (v->get() < min || v->get() > max) {
      report(&e, key, "element " + std::to_string(i) + ": value " + std::to_string(v->get()) +
                          " is out of range [" + std::to_string(min) + ", " + std::to_string(max) + "]");
    } else {
      out.push_back(v->get());
    }
  }
  return out;
}

std::string Section::choice(std::string_view key, std::string_view def, std::vector<std::string_view> allowed) {
  const auto* n = static_cast<const toml::node*>(lookup(key));
  if (n == nullptr) return std::string(def);
  if (const auto* s = n->as_string()) {
    if (std::find(allowed.begin(), allowed.end(), std::string_view(s->get())) != allowed.end()) return s->get();
  }
  std::string msg = "expected one of ";
  for (std::size_t i = 0; i < allowed.size(); ++i) {
    msg += (i ? ", \"" : "\"") + std::string(allowed[i]) + "\"";
  }
  report(n, key, msg + "; " + got(*n));
  return std::string(def);
}

Section Section::table(std::string_view key) {
  const auto* n = static_cast<const toml::node*>(lookup(key));
  if (n == nullptr) return Section(doc_, nullptr, full_key(key));
  if (!n->is_table()) {
    report(n, key, "expected a table, " + got(*n));
    return Section(doc_, nullptr, full_key(key));
  }
  return Section(doc_, n->as_table(), full_key(key));
}

void Section::error(std::string_view key, std::string message) {
  const auto* table = static_cast<const toml::table*>(node_);
  report(table != nullptr ? table->get(key) : nullptr, key, std::move(message));
}

void Section::finish() {
  const auto* table = static_cast<const toml::table*>(node_);
  if (table == nullptr) return;
  doc_->state_->report_unknown(*doc_, *table, path_, false);
}

}  // namespace hypergate::config
