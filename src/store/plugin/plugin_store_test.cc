#include "store/plugin/plugin_store.h"

#include <dlfcn.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <stdexcept>

#include "common/status_matchers.h"
#include "store/memory/memory_store.h"
#include "store/open.h"
#include "store/plugin/plugin_export.h"

namespace plinth::store::plugin {
namespace {

using ::testing::HasSubstr;

constexpr char kPluginPath[] = PLINTH_MEMORY_PLUGIN_PATH;

TEST(PluginEntrySymbol, IsDerivedFromTheFileName) {
  EXPECT_EQ(PluginEntrySymbol("/x/libplinth_memory_store.so"),
            "plinth_store_plugin_plinth_memory_store");
  EXPECT_EQ(PluginEntrySymbol("libfoo-db.so.1.2"), "plinth_store_plugin_foo_db");
  EXPECT_EQ(PluginEntrySymbol("bar.so"), "plinth_store_plugin_bar");
}

TEST(PluginStore, LoadsTheMemoryPluginAndServesTheContractThroughTheAbi) {
  ASSERT_OK_AND_ASSIGN(auto store,
                       OpenStore(std::string("plugin://") + kPluginPath + "?name=abi-test"));
  EXPECT_EQ(store->backend(), "plugin");
  EXPECT_EQ(store->limits().max_key_bytes, memory::DefaultLimits().max_key_bytes);
  ASSERT_OK_AND_ASSIGN(auto watch, store->Watch(KeySpan::Prefix("k"), 1, {}));
  const std::string binary_key("k\0\xff", 3);
  ASSERT_OK_AND_ASSIGN(Revision r1, store->Put(binary_key, std::string("v\0", 2)));
  auto tx = store->Begin();
  ASSERT_OK(tx->Get(binary_key));
  ASSERT_OK(tx->Put("k2", "two"));
  ASSERT_OK(tx->DeleteRange(KeySpan::Key(binary_key)));
  ASSERT_OK_AND_ASSIGN(Revision r2, tx->Commit());
  EXPECT_EQ(r2, r1 + 1);

  ASSERT_OK_AND_ASSIGN(WatchBatch b1, watch->Next(std::chrono::seconds(5)));
  EXPECT_EQ(b1.revision, r1);
  ASSERT_EQ(b1.events.size(), 1u);
  EXPECT_EQ(b1.events[0].kv.key, binary_key);
  EXPECT_EQ(b1.events[0].kv.value, std::string("v\0", 2));
  ASSERT_OK_AND_ASSIGN(WatchBatch b2, watch->Next(std::chrono::seconds(5)));
  ASSERT_EQ(b2.events.size(), 2u);
  EXPECT_EQ(b2.events[0].type, Event::Type::kDelete);

  ASSERT_OK_AND_ASSIGN(RangeResult all, store->Range(KeySpan::All(), {}));
  ASSERT_EQ(all.kvs.size(), 1u);
  EXPECT_EQ(all.kvs[0].key, "k2");
  EXPECT_EQ(all.revision, r2);
  ASSERT_OK_AND_ASSIGN(CountResult count, store->Count(KeySpan::All()));
  EXPECT_EQ(count.count, 1);
  EXPECT_THAT(store->Get("missing"), StatusIs(StatusCode::kNotFound, HasSubstr("missing")));

  // Errors keep their code and message across the ABI.
  auto stale = store->Begin();
  stale->Require(Condition::ModRevisionIs("k2", 1));
  ASSERT_OK(stale->Put("x", "y"));
  EXPECT_THAT(stale->Commit(), StatusIs(StatusCode::kAborted, HasSubstr("k2")));
  ASSERT_OK(store->Compact(r2));
  EXPECT_THAT(store->Watch(KeySpan::All(), 1, {}), StatusIs(StatusCode::kOutOfRange));
  ASSERT_OK_AND_ASSIGN(Revision compacted, store->CompactedRevision());
  EXPECT_EQ(compacted, r2);
}

TEST(PluginStore, OnlyTheEntrySymbolIsExported) {
  void* handle = dlopen(kPluginPath, RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(handle, nullptr) << dlerror();
  EXPECT_NE(dlsym(handle, "plinth_store_plugin_plinth_memory_store"), nullptr);
  // A plinth function linked into the object stays private to it.
  EXPECT_EQ(
      dlsym(handle, "_ZN6plinth5store9PrefixEndB5cxx11ESt17basic_string_viewIcSt11char_traitsIcEE"),
      nullptr);
  dlclose(handle);
}

TEST(PluginStore, UnknownPluginOptionIsRejectedByThePlugin) {
  EXPECT_THAT(OpenStore(std::string("plugin://") + kPluginPath + "?colour=blue"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("colour")));
}

TEST(PluginStore, LoadErrorsNameTheProblem) {
  EXPECT_THAT(OpenStore("plugin://"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("names no shared object")));
  EXPECT_THAT(OpenStore("plugin:///nonexistent/libx.so"),
              StatusIs(StatusCode::kNotFound, HasSubstr("/nonexistent/libx.so")));
  EXPECT_THAT(OpenStore("plugin:///etc/hostname"),
              StatusIs(StatusCode::kFailedPrecondition, HasSubstr("cannot load")));
}

StatusOr<std::unique_ptr<Store>> OpenStaticMemory(const std::map<std::string, std::string>&) {
  return OpenStore("memory://");
}

StatusOr<std::unique_ptr<Store>> OpenThrowing(const std::map<std::string, std::string>&) {
  throw std::runtime_error("boom");
}

TEST(PluginExport, TheSameSourceLinksStaticallyForTests) {
  const plinth_store_plugin_api* api =
      ExportStorePlugin<&OpenStaticMemory>("static", PLINTH_STORE_PLUGIN_ABI_VERSION);
  ASSERT_NE(api, nullptr);
  ASSERT_OK_AND_ASSIGN(auto store, OpenStoreFromPluginApi(api, "", {}));
  ASSERT_OK(store->Put("a", "1"));
  ASSERT_OK_AND_ASSIGN(KeyValue kv, store->Get("a"));
  EXPECT_EQ(kv.value, "1");
}

TEST(PluginExport, AnotherAbiVersionGetsNoTable) {
  EXPECT_EQ(ExportStorePlugin<&OpenStaticMemory>("static", PLINTH_STORE_PLUGIN_ABI_VERSION + 1),
            nullptr);
}

TEST(PluginExport, ExceptionsNeverCrossTheAbi) {
  const plinth_store_plugin_api* api =
      ExportStorePlugin<&OpenThrowing>("throwing", PLINTH_STORE_PLUGIN_ABI_VERSION);
  EXPECT_THAT(OpenStoreFromPluginApi(api, "", {}),
              StatusIs(StatusCode::kInternal, HasSubstr("boom")));
}

}  // namespace
}  // namespace plinth::store::plugin
