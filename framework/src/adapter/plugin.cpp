#include "hypergate/adapter/plugin.hpp"

#include <dlfcn.h>
#include <sys/stat.h>

#include <array>
#include <cerrno>
#include <cstring>

namespace hypergate::adapter {

namespace {
using AbiFn = int (*)();
using RegisterFn = int (*)(Registry*, char*, std::size_t);

std::string last_dlerror() {
  const char* e = dlerror();
  return e != nullptr ? e : "unknown dlopen error";
}
}  // namespace

Result<PluginInfo> load_plugin(const std::string& path, Registry& registry) {
  const std::string what = "plugin '" + path + "'";
  struct stat st {};
  if (path.empty()) return Error{Status::InvalidArgument, "plugin: empty path"};
  if (::stat(path.c_str(), &st) != 0) {
    return Error{Status::NotFound, what + ": " + std::strerror(errno)};
  }
  if (!S_ISREG(st.st_mode)) return Error{Status::InvalidArgument, what + ": not a regular file"};

  // dlopen without a slash searches the library path; a plugin is always given by its file path.
  const std::string file = path.find('/') == std::string::npos ? "./" + path : path;
  dlerror();  // clear any stale error
  void* handle = dlopen(file.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) return Error{Status::IoError, what + ": cannot load: " + last_dlerror()};

  auto fail_before_register = [&](Status code, std::string message) -> Result<PluginInfo> {
    dlclose(handle);  // nothing of it has been called into: safe to unload
    return Error{code, std::move(message)};
  };
  auto* abi = reinterpret_cast<AbiFn>(dlsym(handle, kPluginAbiSymbol));
  if (abi == nullptr) {
    return fail_before_register(Status::NotFound, what + ": missing symbol " + kPluginAbiSymbol +
                                                      " (not a HyperGate plugin? export it with HYPERGATE_PLUGIN(fn))");
  }
  auto* reg = reinterpret_cast<RegisterFn>(dlsym(handle, kPluginRegisterSymbol));
  if (reg == nullptr) {
    return fail_before_register(Status::NotFound, what + ": missing symbol " + kPluginRegisterSymbol +
                                                      " (export it with HYPERGATE_PLUGIN(fn))");
  }
  const int version = abi();
  if (version != kPluginAbiVersion) {
    return fail_before_register(Status::Unsupported,
                                what + ": built for plugin ABI version " + std::to_string(version) +
                                    ", this gateway provides version " + std::to_string(kPluginAbiVersion) +
                                    "; rebuild the plugin against this gateway's headers");
  }

  const std::size_t sources_before = registry.sources().size();
  const std::size_t sinks_before = registry.sinks().size();
  std::array<char, 512> err{};
  // From here on the library stays loaded: the registry may hold factories whose code lives in it.
  if (reg(&registry, err.data(), err.size()) != 0) {
    err.back() = '\0';
    return Error{Status::InvalidArgument, what + ": registration failed: " + (err[0] != '\0' ? err.data() : "no reason given")};
  }
  return PluginInfo{path, registry.sources().size() - sources_before, registry.sinks().size() - sinks_before};
}

}  // namespace hypergate::adapter
