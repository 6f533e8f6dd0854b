// Placeholder; the memory backend as a plugin comes with the plugin ABI.
extern "C" int plinth_memory_plugin_placeholder() { return 0; }
