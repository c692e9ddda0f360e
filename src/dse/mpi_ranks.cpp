// Ranks over MPI: rank 0 broadcasts the points to do; the others send each finished point to rank 0
// as JSON text. Point results are small (a few kB), so plain blocking sends are fine.
#include <mpi.h>

#include <stdexcept>
#include <string>

#include <fmt/format.h>

#include "src/dse/ranks.hpp"

namespace lowbit::dse {

namespace {

constexpr int kResultTag = 17;

void check(int rc, const char* what) {
  if (rc != MPI_SUCCESS) throw std::runtime_error(fmt::format("MPI: {} failed (error {})", what, rc));
}

class MpiRanks final : public Ranks {
 public:
  MpiRanks(int* argc, char*** argv) {
    check(MPI_Init(argc, argv), "MPI_Init");
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }
  ~MpiRanks() override { MPI_Finalize(); }
  int rank() const override { return rank_; }
  int size() const override { return size_; }

  std::vector<int> broadcast(std::vector<int> values) override {
    int count = static_cast<int>(values.size());
    check(MPI_Bcast(&count, 1, MPI_INT, 0, MPI_COMM_WORLD), "MPI_Bcast");
    values.resize(static_cast<size_t>(count));
    if (count) check(MPI_Bcast(values.data(), count, MPI_INT, 0, MPI_COMM_WORLD), "MPI_Bcast");
    return values;
  }

  void send_result(const PointResult& p) override {
    std::string text = p.to_json().dump();
    check(MPI_Send(text.data(), static_cast<int>(text.size()), MPI_CHAR, 0, kResultTag, MPI_COMM_WORLD), "MPI_Send");
  }

  std::optional<PointResult> receive_result(bool wait) override {
    MPI_Status status;
    if (wait) {
      check(MPI_Probe(MPI_ANY_SOURCE, kResultTag, MPI_COMM_WORLD, &status), "MPI_Probe");
    } else {
      int ready = 0;
      check(MPI_Iprobe(MPI_ANY_SOURCE, kResultTag, MPI_COMM_WORLD, &ready, &status), "MPI_Iprobe");
      if (!ready) return std::nullopt;
    }
    int length = 0;
    MPI_Get_count(&status, MPI_CHAR, &length);
    std::string text(static_cast<size_t>(length), '\0');
    check(MPI_Recv(text.data(), length, MPI_CHAR, status.MPI_SOURCE, kResultTag, MPI_COMM_WORLD, MPI_STATUS_IGNORE), "MPI_Recv");
    return PointResult::from_json(nlohmann::json::parse(text));
  }

  void abort(int code) override { MPI_Abort(MPI_COMM_WORLD, code); }

 private:
  int rank_ = 0, size_ = 1;
};

}  // namespace

std::unique_ptr<Ranks> make_mpi_ranks(int* argc, char*** argv) { return std::make_unique<MpiRanks>(argc, argv); }

}  // namespace lowbit::dse
