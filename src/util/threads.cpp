#include "util/threads.hpp"

#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

namespace blindcast::util {

void set_thread_name(const char* name) { (void)::pthread_setname_np(::pthread_self(), name); }

void lower_thread_priority(int nice) {
  // On Linux a nice value belongs to a thread, not the whole process.
  (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), nice);
}

}  // namespace blindcast::util
