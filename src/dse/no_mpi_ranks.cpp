#include <stdexcept>

#include "src/dse/ranks.hpp"

namespace lowbit::dse {

std::unique_ptr<Ranks> make_mpi_ranks(int*, char***) {
  throw std::runtime_error("launched by mpirun, but this lowbit was built without MPI (install libopenmpi-dev and rebuild)");
}

}  // namespace lowbit::dse
