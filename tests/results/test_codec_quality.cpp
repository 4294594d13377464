// Lossy codec points and the KV codec quality table: aggregation over requests, JSON round trip,
// and the table/markdown rendering (a lossy point is marked "~", not "!", and the table is shown).
#include <gtest/gtest.h>

#include "results/report_json.hpp"
#include "results/writers.hpp"
#include "tests/results/sample_report.hpp"

namespace cake {
namespace {

TEST(CodecQuality, AggregatesPerCodecAndChunkOverRequests) {
  std::vector<CodecSample> samples = {
      {"none", "none", 1024, "a", 1000, 4000, 4000, 0, 0, 0, true, 4, 4},
      {"int8", "int8;group=64;scale=f16", 1024, "a", 1000, 1000, 4000, 0.01, 0.02, 0.1, true, 4, 4},
      {"int8", "int8;group=64;scale=f16", 1024, "b", 3000, 3000, 12000, 0.03, 0.04, 0.3, false, 11, 12, 6000, 2000},
  };
  const std::vector<CodecQuality> rows = aggregate_codec_quality(samples);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].codec, "none");
  EXPECT_DOUBLE_EQ(rows[0].compression_ratio, 1.0);
  const CodecQuality& q = rows[1];
  EXPECT_EQ(q.requests, 2);
  EXPECT_DOUBLE_EQ(q.bytes_per_token, 1.0);      // 4000 bytes over 4000 tokens
  EXPECT_DOUBLE_EQ(q.compression_ratio, 4.0);    // 16000 raw over 4000 stored
  EXPECT_DOUBLE_EQ(q.k_rel_error, 0.02);
  EXPECT_DOUBLE_EQ(q.v_rel_error, 0.03);
  EXPECT_DOUBLE_EQ(q.logits_rel_error, 0.2);
  EXPECT_DOUBLE_EQ(q.logits_rel_error_max, 0.3);
  EXPECT_EQ(q.first_token_agreements, 1);
  EXPECT_EQ(q.chunks_not_loaded, 1);
  EXPECT_DOUBLE_EQ(*q.decode_gbytes_per_s, 3.0);  // 6000 bytes in 2000 ns
  EXPECT_FALSE(rows[0].decode_gbytes_per_s);
}

RunReport lossy_report() {
  RunReport r = testing::make_sample_report();
  Point& p = r.points.at(2);
  p.codec = "int8";
  p.verified = false;
  p.lossy = true;
  p.first_token_agrees = true;
  p.logits_rel_error = 3.5e-3;
  p.k_rel_error = 4e-3;
  p.v_rel_error = 5e-3;
  p.verify_detail = "lossy codec int8 (not bit-exact, not verified): first token agrees";
  r.codec_quality = aggregate_codec_quality(
      {{"int8", "int8;group=64;scale=f16", 1024, "a", 1000, 1031, 2000, 4e-3, 5e-3, 3.5e-3, true, 1, 1, 2000, 1000}});
  return r;
}

TEST(CodecQuality, JsonRoundTripKeepsLossyFieldsAndTheTable) {
  const RunReport r = lossy_report();
  const std::string text = render_json(r);
  const nlohmann::json j = nlohmann::json::parse(text);
  ASSERT_EQ(j.at("codec_quality").size(), 1u);
  EXPECT_EQ(j.at("codec_quality")[0].at("codec"), "int8");
  EXPECT_TRUE(j.at("points")[2].at("lossy").get<bool>());
  EXPECT_FALSE(j.at("points")[0].contains("lossy"));
  const RunReport back = report_from_json(j, "mem.json");
  EXPECT_EQ(back, r);
  // Reports written before codecs (no codec_quality, no lossy fields) still load.
  nlohmann::json old = j;
  old.erase("codec_quality");
  old["points"][2].erase("lossy");
  EXPECT_TRUE(report_from_json(old, "old.json").codec_quality.empty());
}

TEST(CodecQuality, TableAndMarkdownShowTheQualityAndMarkLossyPoints) {
  const RunReport r = lossy_report();
  for (const std::string& text : {render_table(r), render_markdown(r)}) {
    EXPECT_NE(text.find("KV codec quality"), std::string::npos) << text;
    EXPECT_NE(text.find("int8;group=64;scale=f16"), std::string::npos);
    EXPECT_NE(text.find("1/1"), std::string::npos);  // first-token agreement
    EXPECT_NE(text.find("~"), std::string::npos);
    EXPECT_NE(text.find("lossy codec"), std::string::npos);
  }
  // Without lossy points nothing of it is printed.
  const RunReport plain = testing::make_sample_report();
  EXPECT_EQ(render_table(plain).find("KV codec quality"), std::string::npos);
}

}  // namespace
}  // namespace cake
