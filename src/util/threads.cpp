#include "util/threads.hpp"

#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

namespace blindcast::util {

void set_thread_name(const char* name) { (void)::pthread_setname_np(::pthread_self(), name); }

void lower_thread_priority() {
  // On Linux a nice value belongs to a thread, not the whole process.
  (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 19);
}

}  // namespace blindcast::util
