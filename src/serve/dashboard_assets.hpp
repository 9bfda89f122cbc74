// The dashboard's files (src/serve/dashboard/: HTML, CSS, JavaScript), built
// into the binary (cmake/EmbedAssets.cmake): the page works on a machine
// without internet access and cannot drift from the binary that serves it.
#pragma once

#include <string_view>

namespace blindcast::serve {

struct DashboardAsset {
  std::string_view name;  // "app.js"
  std::string_view type;  // its Content-Type
  std::string_view body;
};

// The file called `name`, or nullptr.
const DashboardAsset* dashboard_asset(std::string_view name);

}  // namespace blindcast::serve
