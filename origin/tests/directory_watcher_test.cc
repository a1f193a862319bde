// inotify queues an event before the system call that causes it returns, so
// each change below is readable at once: no waiting, no clock.
#include "origin/directory_watcher.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

namespace mf::origin {
namespace {

class DirectoryWatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/mf-watch-test-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    root_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(root_); }
  std::string root_;
};

TEST_F(DirectoryWatcherTest, ReportsWrittenAndRenamedFilesAndNewDirectories) {
  ::mkdir((root_ + "/hi").c_str(), 0755);
  auto watcher = DirectoryWatcher::open(root_);
  ASSERT_TRUE(watcher) << watcher.error();
  EXPECT_TRUE(watcher->read_changes()->files.empty());

  std::ofstream(root_ + "/hi/index.m3u8") << "#EXTM3U\n";  // closed after writing
  std::ofstream(root_ + "/hi/.index.m3u8.tmp") << "x";    // hidden: skipped
  std::ofstream(root_ + "/hi/index.m3u8.tmp") << "#EXTM3U\n";
  ASSERT_EQ(std::rename((root_ + "/hi/index.m3u8.tmp").c_str(), (root_ + "/hi/index.m3u8").c_str()), 0);
  auto changes = watcher->read_changes();
  ASSERT_TRUE(changes) << changes.error();
  EXPECT_EQ(changes->files, (std::vector<std::string>{root_ + "/hi/index.m3u8", root_ + "/hi/index.m3u8.tmp",
                                                      root_ + "/hi/index.m3u8"}));

  // A new directory is watched at once; what it already holds is reported.
  ::mkdir((root_ + "/lo").c_str(), 0755);
  std::ofstream(root_ + "/lo/early.m3u8") << "#EXTM3U\n";
  changes = watcher->read_changes();
  ASSERT_TRUE(changes);
  EXPECT_NE(std::find(changes->files.begin(), changes->files.end(), root_ + "/lo/early.m3u8"), changes->files.end());
  std::ofstream(root_ + "/lo/index.m3u8") << "#EXTM3U\n";
  changes = watcher->read_changes();
  ASSERT_TRUE(changes);
  EXPECT_EQ(changes->files, (std::vector<std::string>{root_ + "/lo/index.m3u8"}));
}

TEST_F(DirectoryWatcherTest, ReportsLostDirectoriesAndTheRoot) {
  ::mkdir((root_ + "/hi").c_str(), 0755);
  auto watcher = DirectoryWatcher::open(root_);
  ASSERT_TRUE(watcher);
  std::filesystem::remove_all(root_ + "/hi");
  auto changes = watcher->read_changes();
  ASSERT_TRUE(changes);
  EXPECT_EQ(changes->lost_directories, (std::vector<std::string>{root_ + "/hi"}));
  EXPECT_FALSE(changes->root_lost);
  std::filesystem::remove_all(root_);
  changes = watcher->read_changes();
  ASSERT_TRUE(changes);
  EXPECT_TRUE(changes->root_lost);
}

TEST_F(DirectoryWatcherTest, FindFilesSkipsHiddenNamesAndDirectoryLinks) {
  ::mkdir((root_ + "/a").c_str(), 0755);
  std::ofstream(root_ + "/a/index.m3u8") << "";
  std::ofstream(root_ + "/a/.hidden.m3u8") << "";
  std::ofstream(root_ + "/a/seg.m4s") << "";
  ASSERT_EQ(::symlink(root_.c_str(), (root_ + "/a/loop").c_str()), 0);
  auto found = find_files(root_, ".m3u8");
  ASSERT_TRUE(found) << found.error();
  EXPECT_EQ(*found, (std::vector<std::string>{root_ + "/a/index.m3u8"}));
  EXPECT_FALSE(find_files(root_ + "/missing", ".m3u8"));
}

}  // namespace
}  // namespace mf::origin
