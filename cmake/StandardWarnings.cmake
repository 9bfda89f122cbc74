# One target carries the warning flags for everything blindcast compiles itself.
# Warnings are errors in developer builds (the default); pass
# -DBLINDCAST_WERROR=OFF to build with a newer compiler that warns more.
option(BLINDCAST_WERROR "Treat compiler warnings as errors" ON)
add_library(blindcast_warnings INTERFACE)
target_compile_options(blindcast_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wcast-align -Wunused
  -Woverloaded-virtual -Wimplicit-fallthrough
  $<$<BOOL:${BLINDCAST_WERROR}>:-Werror>)
