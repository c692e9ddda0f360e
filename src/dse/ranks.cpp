#include <cstdlib>

#include "src/dse/ranks.hpp"

namespace lowbit::dse {

namespace {

class SingleRank final : public Ranks {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::vector<int> broadcast(std::vector<int> values) override { return values; }
  void send_result(const PointResult&) override {}
  std::optional<PointResult> receive_result(bool) override { return std::nullopt; }
  void abort(int code) override { std::exit(code); }
};

// mpirun (Open MPI, or any PMI launcher) tells its processes how many they are.
bool launched_by_mpirun() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"})
    if (std::getenv(v)) return true;
  return false;
}

}  // namespace

std::unique_ptr<Ranks> make_ranks(int* argc, char*** argv) {
  if (launched_by_mpirun()) return make_mpi_ranks(argc, argv);
  return std::make_unique<SingleRank>();
}

}  // namespace lowbit::dse
