// The libpq layer's checks that need no server: secrets only from a
// passfile, never in the URI or over an unencrypted network, and what is
// printed about a connection.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include <fmt/format.h>

#include "store/pg_conn.hpp"
#include "test_support.hpp"

namespace blindcast::store {
namespace {

void write_file(const std::filesystem::path& p, const std::string& text, mode_t mode) {
  std::ofstream(p) << text;
  ::chmod(p.c_str(), mode);
}

TEST(PgConnection, APasswordInTheUriIsRefusedWithoutBeingPrinted) {
  auto c = pg::Connection::open("postgresql://mailer:s3cretpw@127.0.0.1:1/db");
  ASSERT_FALSE(c.has_value());
  EXPECT_NE(c.error().message.find("passfile"), std::string::npos) << c.error().message;
  EXPECT_EQ(c.error().message.find("s3cretpw"), std::string::npos) << c.error().message;
  EXPECT_EQ(c.error().exit_code, ExitCode::k_usage);
}

TEST(PgConnection, APassfileOthersCanReadIsRefusedWithTheChmodThatFixesIt) {
  testing::TempDir dir;
  const auto pass = dir.path() / "pgpass";
  write_file(pass, "127.0.0.1:1:db:mailer:pw\n", 0644);
  auto c = pg::Connection::open(fmt::format("postgresql://mailer@127.0.0.1:1/db?passfile={}", pass.string()));
  ASSERT_FALSE(c.has_value());
  EXPECT_NE(c.error().message.find("chmod"), std::string::npos) << c.error().message;
}

TEST(PgConnection, APasswordNeverCrossesTheNetworkUnencrypted) {
  testing::TempDir dir;
  const auto pass = dir.path() / "pgpass";
  write_file(pass, "db.example.com:5432:db:mailer:pw\n", 0600);
  for (const char* sslmode : {"", "&sslmode=prefer", "&sslmode=disable"}) {
    auto c = pg::Connection::open(
        fmt::format("postgresql://mailer@db.example.com/db?passfile={}{}", pass.string(), sslmode));
    ASSERT_FALSE(c.has_value());
    EXPECT_NE(c.error().message.find("sslmode=verify-full"), std::string::npos) << c.error().message;
  }
}

TEST(PgConnection, DescribeShowsWhereNotSecrets) {
  EXPECT_EQ(pg::describe("postgresql://mailer@db.example.com:6432/mail?passfile=/etc/pgpass&sslmode=verify-full"),
            "postgresql://mailer@db.example.com:6432/mail");
  EXPECT_TRUE(pg::is_uri("postgres://u@h/d"));
  EXPECT_FALSE(pg::is_uri("/var/lib/blindcast/state.db"));
  const auto loc = pg::parse_locator(pg::make_locator("postgresql://u@h/d?sslmode=require", "spring-sale"));
  EXPECT_EQ(loc.uri, "postgresql://u@h/d?sslmode=require");
  EXPECT_EQ(loc.campaign, "spring-sale");
}

}  // namespace
}  // namespace blindcast::store
