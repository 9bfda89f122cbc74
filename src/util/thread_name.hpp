// Names the calling thread (as `top -H`, `ps -L` and profilers show it).
#pragma once

namespace blindcast::util {

// Sets the calling thread's name; Linux keeps the first 15 bytes.
void set_thread_name(const char* name);

}  // namespace blindcast::util
