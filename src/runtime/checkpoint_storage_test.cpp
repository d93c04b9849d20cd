#include "runtime/checkpoint_storage.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>

#include "common/durable_file.hpp"
#include "common/key.hpp"
#include "runtime/state_backend.hpp"

namespace vigil {
namespace {

namespace fs = std::filesystem;

class CheckpointStorageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = fs::temp_directory_path() / ("vigil-chk-test-" + std::to_string(::getpid()));
    fs::remove_all(base_);
    state_backend::options o;
    o.directory = (base_ / "state").string();
    auto st = state_backend::open(o);
    ASSERT_TRUE(st.ok()) << st.err().message;
    state_ = std::move(*st);
    auto id = state_->declare("counts", state_backend::kind::value);
    ASSERT_TRUE(id.ok());
    counts_ = *id;
  }
  void TearDown() override {
    state_.reset();
    fs::remove_all(base_);
  }

  /// Writes the state cache back, so that the entries are in SST files rather than in a
  /// checkpoint's delta of young cache entries.
  void write_back() {
    state_->scan_all(counts_, [](uint32_t, std::string_view, std::string_view) { return true; });
  }

  void put_keys(int64_t from, int64_t to) {
    for (int64_t k = from; k < to; ++k) {
      std::string key(1, '\1');
      put_i64_ordered(key, k);
      state_->set_current_key(static_cast<uint32_t>(k % 128), key);
      state_->put(counts_, 0, std::string(100, static_cast<char>('a' + k % 26)));
    }
  }

  /// Snapshots the backend as checkpoint `id` of subtask "w-0".
  snapshot_stats snapshot(checkpoint_storage& storage, int64_t id) {
    fs::path local = base_ / ("local-" + std::to_string(id));
    auto identity = state_->checkpoint_to(local.string());
    EXPECT_TRUE(identity.ok()) << identity.err().message;
    auto stats = storage.store_state(id, "w-0", local, identity.ok() ? *identity : "");
    EXPECT_TRUE(stats.ok()) << stats.err().message;
    EXPECT_FALSE(fs::exists(local)) << "the local RocksDB checkpoint is removed once stored";
    return stats.ok() ? *stats : snapshot_stats{};
  }

  fs::path base_;
  std::unique_ptr<state_backend> state_;
  state_backend::state_id counts_ = 0;
};

TEST_F(CheckpointStorageTest, OnOneFileSystemSnapshotFilesAreLinkedNotCopied) {
  checkpoint_storage storage(base_ / "checkpoints");
  put_keys(0, 5000);
  write_back();
  put_keys(5000, 6000);  // Young entries: a cache delta file too.
  fs::path local = base_ / "local";
  auto identity = state_->checkpoint_to(local.string());
  ASSERT_TRUE(identity.ok()) << identity.err().message;
  std::map<std::string, ino_t> inodes;  // Name in the snapshot -> inode.
  for (const auto& entry : fs::directory_iterator(local)) {
    struct stat st {};
    ASSERT_EQ(::stat(entry.path().c_str(), &st), 0);
    inodes[entry.path().filename().string()] = st.st_ino;
  }
  ASSERT_TRUE(inodes.count("VIGIL-STATE-DELTA"));
  auto stats = storage.store_state(1, "w-0", local, *identity);
  ASSERT_TRUE(stats.ok()) << stats.err().message;
  // Shared SSTs are stored under the identity's alphanumeric characters and their own name.
  std::string id;
  for (char c : *identity) {
    if (std::isalnum(static_cast<unsigned char>(c))) id += c;
  }
  size_t ssts = 0;
  for (const auto& [name, inode] : inodes) {
    const bool sst = name.size() > 4 && name.compare(name.size() - 4, 4, ".sst") == 0;
    ssts += sst ? 1 : 0;
    const fs::path stored = sst ? base_ / "checkpoints" / "shared" / "w-0" / (id + "-" + name)
                                : storage.checkpoint_dir(1) / "w-0" / name;
    struct stat st {};
    ASSERT_EQ(::stat(stored.c_str(), &st), 0) << stored;
    EXPECT_EQ(st.st_ino, inode) << name << " was copied, not linked";
    EXPECT_FALSE(fs::exists(fs::path(stored.string() + ".tmp")));
  }
  EXPECT_GT(ssts, 0u);
}

TEST_F(CheckpointStorageTest, AcrossFileSystemsSnapshotFilesAreCopied) {
  // /dev/shm is a tmpfs; where the temporary directory is one too, on the same mount, no second
  // file system is at hand.
  const fs::path other = fs::path("/dev/shm") / ("vigil-chk-test-" + std::to_string(::getpid()));
  struct stat here {};
  struct stat there {};
  if (::stat(base_.parent_path().c_str(), &here) != 0 || ::stat("/dev/shm", &there) != 0 ||
      here.st_dev == there.st_dev) {
    GTEST_SKIP() << "no second file system beside " << base_.parent_path();
  }
  fs::create_directories(base_);
  const fs::path src = base_ / "delta";
  ASSERT_TRUE(write_file_synced(src, "young entries").ok());
  ASSERT_TRUE(link_or_copy_synced(src, other).ok());
  struct stat a {};
  struct stat b {};
  ASSERT_EQ(::stat(src.c_str(), &a), 0);
  ASSERT_EQ(::stat(other.c_str(), &b), 0);
  EXPECT_NE(a.st_dev, b.st_dev);
  std::ifstream in(other, std::ios::binary);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()),
            "young entries");
  EXPECT_FALSE(fs::exists(fs::path(other.string() + ".tmp")));
  fs::remove(other);
}

TEST_F(CheckpointStorageTest, CopiesEachSstFileOnlyOnce) {
  checkpoint_storage storage(base_ / "checkpoints");
  put_keys(0, 5000);
  write_back();
  auto first = snapshot(storage, 1);
  EXPECT_GT(first.bytes, 0u);
  EXPECT_EQ(first.bytes_copied, first.bytes);  // Nothing to share with yet.
  ASSERT_TRUE(storage.complete(1, "{}").ok());

  put_keys(5000, 6000);
  auto second = snapshot(storage, 2);
  EXPECT_GT(second.bytes, first.bytes);
  // The first checkpoint's SST files are referenced, not copied again.
  EXPECT_LT(second.bytes_copied, second.bytes - first.bytes / 2);
  EXPECT_LT(second.files_copied, second.files);
  ASSERT_TRUE(storage.complete(2, "{}").ok());

  auto shared1 = storage.shared_files(1, "w-0");
  auto shared2 = storage.shared_files(2, "w-0");
  ASSERT_TRUE(shared1.ok() && shared2.ok());
  std::set<std::string> in2(shared2->begin(), shared2->end());
  for (const auto& f : *shared1) EXPECT_EQ(in2.count(f), 1u) << f << " (no compaction ran)";
  for (const auto& f : *shared2) EXPECT_TRUE(fs::exists(base_ / "checkpoints/shared/w-0" / f));
  EXPECT_EQ(storage.completed(), (std::vector<int64_t>{1, 2}));
}

TEST_F(CheckpointStorageTest, AnIncompleteCheckpointIsNotListed) {
  checkpoint_storage storage(base_ / "checkpoints");
  put_keys(0, 100);
  snapshot(storage, 7);
  ASSERT_TRUE(storage.store_operator_state(7, "gen-0", "position").ok());
  EXPECT_TRUE(storage.completed().empty());
  storage.abandon(7);
  EXPECT_FALSE(fs::exists(storage.checkpoint_dir(7)));
}

TEST_F(CheckpointStorageTest, RetentionDropsOldCheckpointsAndUnreferencedFiles) {
  checkpoint_storage storage(base_ / "checkpoints");
  put_keys(0, 2000);
  write_back();
  snapshot(storage, 1);
  ASSERT_TRUE(storage.complete(1, "{}").ok());
  auto old_files = storage.shared_files(1, "w-0");
  ASSERT_TRUE(old_files.ok());
  ASSERT_FALSE(old_files->empty());

  // Compaction rewrites everything into new SST files: checkpoint 2 shares none with 1.
  put_keys(2000, 3000);
  ASSERT_TRUE(state_->compact().ok());
  snapshot(storage, 2);
  ASSERT_TRUE(storage.complete(2, "{}").ok());
  snapshot(storage, 3);  // Left incomplete (say, it timed out): older than nothing kept.

  ASSERT_TRUE(storage.retain(1).ok());
  EXPECT_EQ(storage.completed(), (std::vector<int64_t>{2}));
  EXPECT_FALSE(fs::exists(storage.checkpoint_dir(1)));
  EXPECT_TRUE(fs::exists(storage.checkpoint_dir(3))) << "newer than the kept one";
  auto kept = storage.shared_files(2, "w-0");
  ASSERT_TRUE(kept.ok());
  std::set<std::string> kept_set(kept->begin(), kept->end());
  for (const auto& f : *old_files) {
    if (kept_set.count(f) == 0) {
      EXPECT_FALSE(fs::exists(base_ / "checkpoints/shared/w-0" / f)) << f;
    }
  }
  for (const auto& f : *kept) EXPECT_TRUE(fs::exists(base_ / "checkpoints/shared/w-0" / f)) << f;
}

TEST_F(CheckpointStorageTest, ASavepointOutlivesTheCheckpointItWasExportedFrom) {
  checkpoint_storage storage(base_ / "checkpoints");
  put_keys(0, 2000);
  write_back();
  put_keys(2000, 2500);  // Young: in the checkpoint's cache delta.
  snapshot(storage, 1);
  ASSERT_TRUE(storage.complete(1, "{}").ok());
  auto files = storage.shared_files(1, "w-0");
  ASSERT_TRUE(files.ok());
  ASSERT_FALSE(files->empty());

  const fs::path target = base_ / "savepoint";
  auto exported = storage.export_checkpoint(1, target);
  ASSERT_TRUE(exported.ok()) << exported.err().message;
  EXPECT_FALSE(storage.export_checkpoint(1, target).ok()) << "never over an existing savepoint";
  // On the same file system the immutable SST files are linked, not copied.
  for (const auto& f : *files) {
    EXPECT_TRUE(fs::equivalent(target / "shared/w-0" / f, base_ / "checkpoints/shared/w-0" / f))
        << f;
  }

  // Retention drops checkpoint 1 and its files; the savepoint keeps its own names.
  put_keys(2500, 3000);
  ASSERT_TRUE(state_->compact().ok());
  snapshot(storage, 2);
  ASSERT_TRUE(storage.complete(2, "{}").ok());
  ASSERT_TRUE(storage.retain(1).ok());
  EXPECT_FALSE(fs::exists(storage.checkpoint_dir(1)));

  checkpoint_storage savepoint(target);
  EXPECT_EQ(savepoint.completed(), (std::vector<int64_t>{1}));
  const fs::path restored = base_ / "restored";
  auto r = savepoint.restore_state(1, "w-0", restored);
  ASSERT_TRUE(r.ok() && *r);
  state_.reset();
  state_backend::options o;
  o.directory = restored.string();
  o.fresh = false;
  auto st = state_backend::open(o);
  ASSERT_TRUE(st.ok()) << st.err().message;
  ASSERT_TRUE((*st)->declare("counts", state_backend::kind::value).ok());
  size_t keys = 0;
  (*st)->scan_all(counts_, [&](uint32_t, std::string_view, std::string_view) {
    ++keys;
    return true;
  });
  EXPECT_EQ(keys, 2500u) << "the SST files and the cache delta of checkpoint 1";
}

}  // namespace
}  // namespace vigil
