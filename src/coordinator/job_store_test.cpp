#include "coordinator/job_store.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace vigil {
namespace {

namespace fs = std::filesystem;

class JobStoreTest : public ::testing::Test {
 protected:
  JobStoreTest()
      : dir_(fs::temp_directory_path() /
             ("vigil-job-store-test-" + std::to_string(::getpid()) + "-" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name())) {
    fs::remove_all(dir_);
  }
  ~JobStoreTest() override { fs::remove_all(dir_); }

  static job_info job(std::string id, int64_t submitted_at_us) {
    job_info j;
    j.id = std::move(id);
    j.name = "vitals";
    j.submitted_at_us = submitted_at_us;
    j.subtasks = {{"src", 0, "w1", "running"}, {"src", 1, "w2", "deploying"}};
    return j;
  }

  static v1::JobGraph graph(const std::string& name) {
    v1::JobGraph g;
    g.set_name(name);
    auto* n = g.add_nodes();
    n->set_id("src");
    n->set_operator_("generator");
    n->set_parallelism(2);
    return g;
  }

  void write_raw(const std::string& name, const std::string& bytes) {
    std::ofstream(dir_ / name, std::ios::binary) << bytes;
  }

  std::string read_raw(const std::string& name) {
    std::ifstream in(dir_ / name, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }

  fs::path dir_;
};

TEST_F(JobStoreTest, JobsSurviveAReopen) {
  {
    auto store = job_store::open(dir_);
    ASSERT_TRUE(store.ok()) << store.err().message;
    ASSERT_TRUE(store->put(job("job-2", 2000), graph("second")).ok());
    ASSERT_TRUE(store->put(job("job-1", 1000), graph("first")).ok());
  }
  auto store = job_store::open(dir_);
  ASSERT_TRUE(store.ok()) << store.err().message;
  EXPECT_TRUE(store->load_errors().empty());
  auto jobs = store->jobs();
  ASSERT_EQ(jobs.size(), 2u);
  EXPECT_EQ(jobs[0]->info.id, "job-1");  // Oldest submission first.
  EXPECT_EQ(jobs[0]->graph.name(), "first");
  EXPECT_EQ(jobs[1]->info.id, "job-2");
  EXPECT_EQ(jobs[1]->info.name, "vitals");
  EXPECT_EQ(jobs[1]->info.state, job_state::pending);
  EXPECT_EQ(jobs[1]->info.submitted_at_us, 2000);
  ASSERT_EQ(jobs[1]->info.subtasks.size(), 2u);
  EXPECT_EQ(jobs[1]->info.subtasks[1].node_id, "src");
  EXPECT_EQ(jobs[1]->info.subtasks[1].subtask, 1u);
  EXPECT_EQ(jobs[1]->info.subtasks[1].worker_id, "w2");
  EXPECT_EQ(jobs[1]->info.subtasks[1].state, "deploying");
  EXPECT_EQ(jobs[1]->graph.nodes(0).parallelism(), 2u);
}

TEST_F(JobStoreTest, TheOwnerSurvivesAReopen) {
  {
    auto store = job_store::open(dir_);
    ASSERT_TRUE(store.ok()) << store.err().message;
    auto j = job("job-1", 1000);
    j.owner = "ana";
    ASSERT_TRUE(store->put(j, graph("first")).ok());
  }
  auto store = job_store::open(dir_);
  ASSERT_TRUE(store.ok()) << store.err().message;
  ASSERT_NE(store->find("job-1"), nullptr);
  EXPECT_EQ(store->find("job-1")->info.owner, "ana");
}

TEST_F(JobStoreTest, UpdateKeepsTheGraphAndSurvivesAReopen) {
  {
    auto store = job_store::open(dir_);
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE(store->put(job("job-1", 1000), graph("first")).ok());
    auto changed = job("job-1", 1000);
    changed.state = job_state::failed;
    changed.error = "node 'src': disk full";
    changed.subtasks.clear();
    ASSERT_TRUE(store->update(changed).ok());
    EXPECT_EQ(store->find("job-1")->info.state, job_state::failed);
  }
  auto store = job_store::open(dir_);
  ASSERT_TRUE(store.ok());
  const auto* j = store->find("job-1");
  ASSERT_NE(j, nullptr);
  EXPECT_EQ(j->info.state, job_state::failed);
  EXPECT_EQ(j->info.error, "node 'src': disk full");
  EXPECT_TRUE(j->info.subtasks.empty());
  EXPECT_EQ(j->graph.name(), "first");
  EXPECT_EQ(store->find("job-9"), nullptr);
}

TEST_F(JobStoreTest, UpdateOfAnUnknownJobIsNotFound) {
  auto store = job_store::open(dir_);
  ASSERT_TRUE(store.ok());
  auto s = store->update(job("job-1", 1000));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.err().code, errc::not_found);
  EXPECT_EQ(s.err().message, "job store: no job with id 'job-1'");
}

TEST_F(JobStoreTest, RefusesIdsThatAreNotSafeFileNames) {
  auto store = job_store::open(dir_);
  ASSERT_TRUE(store.ok());
  for (const char* id : {"", "../x", ".hidden", "a/b", "a b"}) {
    auto s = store->put(job(id, 1), graph("g"));
    ASSERT_FALSE(s.ok()) << id;
    EXPECT_EQ(s.err().code, errc::invalid_argument);
  }
  EXPECT_TRUE(store->put(job(std::string(128, 'a'), 1), graph("g")).ok());
  EXPECT_FALSE(store->put(job(std::string(129, 'a'), 1), graph("g")).ok());
}

TEST_F(JobStoreTest, CorruptFilesAreSkippedAndNamed) {
  {
    auto store = job_store::open(dir_);
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE(store->put(job("good", 1), graph("g")).ok());
    ASSERT_TRUE(store->put(job("flipped", 2), graph("g")).ok());
    ASSERT_TRUE(store->put(job("short", 3), graph("g")).ok());
    ASSERT_TRUE(store->put(job("moved", 4), graph("g")).ok());
  }
  auto flipped = read_raw("flipped.job");
  flipped.back() ^= 0x01;
  write_raw("flipped.job", flipped);
  auto shortened = read_raw("short.job");
  write_raw("short.job", shortened.substr(0, shortened.size() - 3));
  fs::rename(dir_ / "moved.job", dir_ / "renamed.job");
  write_raw("garbage.job", "this is not a job file at all");
  write_raw("empty.job", "");
  write_raw("README", "ignored");
  write_raw("half.job.tmp", "an interrupted write");

  auto store = job_store::open(dir_);
  ASSERT_TRUE(store.ok()) << store.err().message;
  ASSERT_EQ(store->jobs().size(), 1u);
  EXPECT_EQ(store->jobs()[0]->info.id, "good");
  std::map<std::string, std::string> problems;
  for (const auto& e : store->load_errors()) {
    for (const char* f : {"flipped.job", "short.job", "renamed.job", "garbage.job", "empty.job"}) {
      if (e.message.find((dir_ / f).string() + ": ") != std::string::npos) problems[f] = e.message;
    }
  }
  EXPECT_EQ(store->load_errors().size(), 5u);
  ASSERT_EQ(problems.size(), 5u);
  EXPECT_NE(problems["flipped.job"].find("checksum mismatch"), std::string::npos);
  EXPECT_NE(problems["short.job"].find("truncated"), std::string::npos);
  EXPECT_NE(problems["renamed.job"].find("holds job 'moved', expected 'renamed'"),
            std::string::npos);
  EXPECT_NE(problems["garbage.job"].find("bad header"), std::string::npos);
  EXPECT_NE(problems["empty.job"].find("bad header"), std::string::npos);
  EXPECT_FALSE(fs::exists(dir_ / "half.job.tmp"));
  EXPECT_TRUE(fs::exists(dir_ / "README"));
}

TEST_F(JobStoreTest, AFileInPlaceOfTheDirectoryIsAnIoError) {
  std::ofstream(dir_.string()) << "x";
  auto store = job_store::open(dir_);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.err().code, errc::io_error);
  EXPECT_NE(store.err().message.find(dir_.string()), std::string::npos);
  fs::remove(dir_);
}

TEST_F(JobStoreTest, RewritesLeaveNoTemporaryFiles) {
  auto store = job_store::open(dir_);
  ASSERT_TRUE(store.ok());
  auto j = job("job-1", 1);
  ASSERT_TRUE(store->put(j, graph("g")).ok());
  j.state = job_state::running;
  ASSERT_TRUE(store->update(j).ok());
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir_)) names.push_back(e.path().filename());
  EXPECT_EQ(names, std::vector<std::string>{"job-1.job"});
}

}  // namespace
}  // namespace vigil
