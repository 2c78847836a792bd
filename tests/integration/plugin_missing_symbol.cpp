// Test-only plugin that exports the ABI version but no registration function.
extern "C" __attribute__((visibility("default"))) int hypergate_plugin_abi_version() { return 1; }
