// The process allocator: every executable links mimalloc ahead of libc, so
// malloc everywhere (GMime, GLib, SQLite, OpenSSL, operator new) is
// mimalloc's. A build that lost the link (an --as-needed linker dropping a
// library nothing calls by name) would fall back to glibc's silently.
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

namespace {

// The file of the shared object that defines the code at `address`.
std::string object_of(void* address) {
  Dl_info info{};
  if (dladdr(address, &info) == 0 || info.dli_fname == nullptr) return "(unknown)";
  return info.dli_fname;
}

TEST(Allocator, MallocAndFreeAreMimallocsForTheProgramAndItsLibraries) {
  // What this program's calls bind to, and what every library's calls bind
  // to (the first definition in the global scope).
  EXPECT_NE(object_of(reinterpret_cast<void*>(&std::malloc)).find("libmimalloc"), std::string::npos)
      << object_of(reinterpret_cast<void*>(&std::malloc));
  for (const char* name : {"malloc", "free", "calloc", "realloc", "posix_memalign"}) {
    void* symbol = dlsym(RTLD_DEFAULT, name);
    ASSERT_NE(symbol, nullptr) << name;
    EXPECT_NE(object_of(symbol).find("libmimalloc"), std::string::npos) << name << " is " << object_of(symbol);
  }
}

}  // namespace
