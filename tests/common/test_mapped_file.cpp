// MappedFile: a read-only mapping that reads the file's bytes, and populate(), which answers a range
// past the mapping with ERANGE and a range the file no longer covers (cut after mapping) with
// EFAULT, never with a SIGBUS.
#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "common/fd.hpp"
#include "common/mapped_file.hpp"

namespace cake {
namespace {

struct TempFile {
  std::string path;
  explicit TempFile(const std::vector<std::byte>& bytes) {
    char name[] = "/tmp/cake-mapped-XXXXXX";
    const int fd = ::mkstemp(name);
    EXPECT_GE(fd, 0);
    path = name;
    EXPECT_EQ(::write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
    ::close(fd);
  }
  ~TempFile() { ::unlink(path.c_str()); }
};

TEST(MappedFile, ReadsTheFileAndRefusesRangesItNoLongerCovers) {
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  std::mt19937_64 rng(std::random_device{}());
  std::vector<std::byte> bytes(3 * page);
  for (auto& b : bytes) b = static_cast<std::byte>(rng());
  const TempFile file(bytes);
  UniqueFd fd(::open(file.path.c_str(), O_RDWR | O_CLOEXEC));
  ASSERT_TRUE(fd.valid());
  MappedFile mapped(fd.get(), bytes.size(), file.path);
  ASSERT_TRUE(mapped.valid());
  EXPECT_EQ(mapped.size(), bytes.size());
  EXPECT_EQ(mapped.populate(0, bytes.size()), 0);
  EXPECT_EQ(std::memcmp(mapped.data(), bytes.data(), bytes.size()), 0);
  EXPECT_EQ(mapped.populate(bytes.size() - 1, 2), ERANGE);  // past the mapping
  EXPECT_EQ(mapped.populate(bytes.size(), 0), 0);

  ASSERT_EQ(::ftruncate(fd.get(), static_cast<off_t>(page)), 0);  // cut after mapping
  EXPECT_EQ(mapped.populate(0, page), 0);
  EXPECT_EQ(std::memcmp(mapped.data(), bytes.data(), page), 0);
  EXPECT_EQ(mapped.populate(page, page), EFAULT);
  EXPECT_EQ(mapped.populate(page / 2, page), EFAULT);  // straddles the cut

  MappedFile moved(std::move(mapped));
  EXPECT_FALSE(mapped.valid());  // NOLINT(bugprone-use-after-move): moved-from is empty by contract
  EXPECT_TRUE(moved.valid());
}

TEST(MappedFile, NothingToMapIsNoMapping) {
  const TempFile file({});
  UniqueFd fd(::open(file.path.c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(fd.valid());
  const MappedFile mapped(fd.get(), 0, file.path);
  EXPECT_FALSE(mapped.valid());
  EXPECT_EQ(mapped.populate(0, 0), 0);
  EXPECT_EQ(mapped.populate(0, 1), ERANGE);
}

}  // namespace
}  // namespace cake
