#include "common/config/watched_files.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

namespace mf {
namespace {

FileVersion version(uint64_t inode) { return FileVersion{true, 1, inode, 10, 5}; }

using Step = WatchedFiles::Step;
using Verdict = WatchedFiles::Verdict;

// Nothing on disk under these names: the accepted versions are "missing".
WatchedFiles two_files() { return WatchedFiles({"/nonexistent/mf-a", "/nonexistent/mf-b"}); }

TEST(WatchedFiles, UnchangedFilesAskForNothing) {
  WatchedFiles watch = two_files();
  FileVersion missing[] = {FileVersion{}, FileVersion{}};
  EXPECT_EQ(watch.check(missing), Step::nothing);
}

TEST(WatchedFiles, AChangeIsAttemptedAndAcceptedOnce) {
  WatchedFiles watch = two_files();
  FileVersion renewed[] = {version(2), version(3)};
  EXPECT_EQ(watch.check(renewed), Step::attempt);
  EXPECT_EQ(watch.attempted(true), Verdict::accepted);
  EXPECT_EQ(watch.check(renewed), Step::nothing);
}

TEST(WatchedFiles, AHalfWrittenPairWaitsForTheRest) {
  WatchedFiles watch = two_files();
  FileVersion certificate_only[] = {version(2), FileVersion{}};
  EXPECT_EQ(watch.check(certificate_only), Step::attempt);
  EXPECT_EQ(watch.attempted(false), Verdict::waiting);
  FileVersion both[] = {version(2), version(3)};
  EXPECT_EQ(watch.check(both), Step::attempt);
  EXPECT_EQ(watch.attempted(true), Verdict::accepted);
}

TEST(WatchedFiles, ARefusalIsReportedOnceWhenTheFilesStayTheSame) {
  WatchedFiles watch = two_files();
  FileVersion broken[] = {version(2), version(3)};
  EXPECT_EQ(watch.check(broken), Step::attempt);
  EXPECT_EQ(watch.attempted(false), Verdict::waiting);
  EXPECT_EQ(watch.check(broken), Step::attempt);
  EXPECT_EQ(watch.attempted(false), Verdict::refused);
  // Reported: not read again until they change.
  EXPECT_EQ(watch.check(broken), Step::nothing);
  EXPECT_EQ(watch.check(broken), Step::nothing);
  FileVersion fixed[] = {version(4), version(3)};
  EXPECT_EQ(watch.check(fixed), Step::attempt);
  EXPECT_EQ(watch.attempted(true), Verdict::accepted);
}

TEST(WatchedFiles, ReturningToTheAcceptedFilesClearsARefusal) {
  WatchedFiles watch = two_files();
  FileVersion broken[] = {version(2), version(3)};
  watch.check(broken);
  watch.attempted(false);
  watch.check(broken);
  EXPECT_EQ(watch.attempted(false), Verdict::refused);
  FileVersion missing[] = {FileVersion{}, FileVersion{}};
  EXPECT_EQ(watch.check(missing), Step::nothing);
  // The same broken files again are a new change: attempted, reported again.
  EXPECT_EQ(watch.check(broken), Step::attempt);
  EXPECT_EQ(watch.attempted(false), Verdict::waiting);
}

TEST(FileVersion, ARenameIntoPlaceAndASymlinkSwapAreChanges) {
  std::filesystem::path dir = std::filesystem::temp_directory_path() / ("mf-watched-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto write = [](const std::filesystem::path& p, const char* text) { std::ofstream(p) << text; };
  write(dir / "cert1.pem", "one");
  write(dir / "cert2.pem", "two");
  std::filesystem::create_symlink(dir / "cert1.pem", dir / "live.pem");
  FileVersion first = file_version((dir / "live.pem").string());
  EXPECT_TRUE(first.exists);
  // certbot: a new link renamed over the old one.
  std::filesystem::create_symlink(dir / "cert2.pem", dir / "live.pem.new");
  std::filesystem::rename(dir / "live.pem.new", dir / "live.pem");
  FileVersion swapped = file_version((dir / "live.pem").string());
  EXPECT_NE(first, swapped);
  // A plain file renamed into place.
  write(dir / "plain.pem", "one");
  FileVersion plain = file_version((dir / "plain.pem").string());
  write(dir / "plain.tmp", "one");
  std::filesystem::rename(dir / "plain.tmp", dir / "plain.pem");
  EXPECT_NE(plain, file_version((dir / "plain.pem").string()));
  EXPECT_FALSE(file_version((dir / "absent.pem").string()).exists);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace mf
