// The tables campaign.toml and server.toml share ([transport], [dkim],
// [shaping.<lane>]), read by one parser so that both accept the same keys
// and give the same errors. Findings name "campaign.toml"; a caller reading
// another file renames them (rename_findings).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include <toml++/toml.h>

#include "campaign/config.hpp"
#include "util/diagnostic.hpp"

namespace blindcast::campaign {

// Reads a [transport] table into `out`.
void read_transport_table(const toml::node& node, TransportSettings& out, util::Diagnostics& diags);
// Reads a [dkim] table into `out`.
void read_dkim_table(const toml::node& node, std::optional<DkimSettings>& out, util::Diagnostics& diags);
void read_bounces_table(const toml::node& node, std::optional<BounceSettings>& out, util::Diagnostics& diags);
// Reads the [shaping.<lane>] tables into `out`.
void read_shaping_tables(const toml::node& node, std::vector<delivery::LaneDefaults>& out, util::Diagnostics& diags);
// Renames the findings from `first` on to name `file`.
void rename_findings(util::Diagnostics& diags, std::size_t first, const std::string& file);

}  // namespace blindcast::campaign
