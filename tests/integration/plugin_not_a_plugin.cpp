// Test-only shared library that exports nothing HyperGate knows: not a plugin.
extern "C" __attribute__((visibility("default"))) int some_other_function() { return 42; }
