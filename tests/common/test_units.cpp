#include <gtest/gtest.h>

#include "common/error.hpp"
#include "common/units.hpp"

using namespace cake;

TEST(Units, BandwidthBitsAndBytes) {
  EXPECT_DOUBLE_EQ(parse_bandwidth("8gbps"), 1e9);
  EXPECT_DOUBLE_EQ(parse_bandwidth("8Gbps"), 1e9);
  EXPECT_DOUBLE_EQ(parse_bandwidth("8Gbit/s"), 1e9);
  EXPECT_DOUBLE_EQ(parse_bandwidth("500mbps"), 62.5e6);
  EXPECT_DOUBLE_EQ(parse_bandwidth("2GB/s"), 2e9);
  EXPECT_DOUBLE_EQ(parse_bandwidth("1GiB/s"), 1073741824.0);
  EXPECT_DOUBLE_EQ(parse_bandwidth("0.5gbps"), 62.5e6);
  EXPECT_FALSE(parse_bandwidth_or_unlimited("unlimited").has_value());
}

TEST(Units, BandwidthRejectsAmbiguousOrBad) {
  for (const char* bad : {"8", "8gb/s", "8GBps", "gbps", "-1gbps", "0gbps", "8 gbps", "1e3gbps", "8xbps", ""})
    EXPECT_THROW(parse_bandwidth(bad), UsageError) << bad;
}

TEST(Units, Bytes) {
  EXPECT_EQ(parse_bytes("4096"), 4096u);
  EXPECT_EQ(parse_bytes("4KiB"), 4096u);
  EXPECT_EQ(parse_bytes("1MiB"), 1048576u);
  EXPECT_EQ(parse_bytes("1MB"), 1000000u);
  EXPECT_EQ(parse_bytes("2GiB"), 2147483648u);
  for (const char* bad : {"1M", "1mib", "x", "1.5B", "KiB", "-4KiB"}) EXPECT_THROW(parse_bytes(bad), UsageError) << bad;
}

TEST(Units, TokenCounts) {
  EXPECT_EQ(parse_token_count("32k"), 32768);
  EXPECT_EQ(parse_token_count("4K"), 4096);
  EXPECT_EQ(parse_token_count("1000"), 1000);
  EXPECT_THROW(parse_token_count("4m"), UsageError);
  EXPECT_THROW(parse_token_count("0.3"), UsageError);
}

TEST(Units, Formatting) {
  EXPECT_EQ(format_bytes(512), "512 B");
  EXPECT_EQ(format_bytes(64ull << 20), "64.0 MiB");
  EXPECT_EQ(format_gbps(std::nullopt), "unlimited");
  EXPECT_EQ(format_gbps(1e9), "8 Gbps");
}

TEST(Units, BandwidthLists) {
  const auto v = parse_bandwidth_list("1gbps..8gbps:x2,unlimited,2GB/s");
  ASSERT_EQ(v.size(), 6u);
  EXPECT_DOUBLE_EQ(*v[0], 1e9 / 8);
  EXPECT_DOUBLE_EQ(*v[3], 8e9 / 8);
  EXPECT_FALSE(v[4].has_value());
  EXPECT_DOUBLE_EQ(*v[5], 2e9);
  for (const char* bad : {"1gbps..8gbps", "8gbps..1gbps:x2", "1gbps..8gbps:x1", "1gbps,,2gbps", "", "1gbps..8gbps:xq"})
    EXPECT_THROW(parse_bandwidth_list(bad), UsageError) << bad;
}

TEST(Errors, OutOfSpaceIsAnEnvironmentErrorOtherFailuresAreNot) {
  errno = ENOSPC;
  EXPECT_THROW(check_sys(-1, "writing x"), EnvironmentError);
  EXPECT_THROW(check_neg_errno(-EDQUOT, "writing y"), EnvironmentError);
  try {
    check_sys(-1 + 0 * (errno = EIO), "reading z");
    FAIL() << "no throw";
  } catch (const EnvironmentError&) {
    FAIL() << "EIO is not the environment's";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("reading z"), std::string::npos);
  }
}
