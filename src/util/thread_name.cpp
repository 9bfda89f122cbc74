#include "util/thread_name.hpp"

#include <pthread.h>

namespace blindcast::util {

void set_thread_name(const char* name) { (void)::pthread_setname_np(::pthread_self(), name); }

}  // namespace blindcast::util
