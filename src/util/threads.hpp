// Thread names and priorities for blindcast's own threads.
#pragma once

namespace blindcast::util {

// Sets the calling thread's name (as `top -H`, `ps -L` and profilers show
// it); Linux keeps the first 15 bytes.
void set_thread_name(const char* name);

// Lowers the calling thread's CPU priority to the lowest normal level (nice
// 19). For work that runs ahead of the thread that talks to the network:
// when that thread wakes up it gets a core at once instead of waiting out a
// builder's time slice. Only ever lowers, so it needs no privilege; failure
// is harmless and ignored.
void lower_thread_priority();

}  // namespace blindcast::util
